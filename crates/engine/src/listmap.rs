//! `ListMap`: a map from a key to a short list, laid out for millions of keys whose list holds
//! one entry (a parent record's one child, the one principal a record inherits read access
//! from): those lists live inline in a table of `(key, entry)`, 12 bytes for ids, with no
//! allocation of their own; the other lists (empty or longer) in a second table as vectors,
//! so that a list growing one entry at a time (a parent's children, as records are created)
//! grows in place, amortized. Which table holds a key is a function of its list's length, so
//! two maps holding the same lists are equal field by field.

use std::collections::HashMap;
use std::hash::Hash;

/// Lists by key: one-entry lists inline, the others in vectors (see the module).
#[derive(Clone, Debug)]
pub(crate) struct ListMap<K, T> {
    one: HashMap<K, T>,
    many: HashMap<K, Vec<T>>,
}

impl<K: Hash + Eq, T: PartialEq> PartialEq for ListMap<K, T> {
    fn eq(&self, other: &Self) -> bool {
        // A list's length decides its table, so equal contents are equal tables.
        self.one == other.one && self.many == other.many
    }
}

impl<K, T> ListMap<K, T> {
    /// Whether no key holds a list.
    pub(crate) fn is_empty(&self) -> bool {
        self.one.is_empty() && self.many.is_empty()
    }
}

impl<K, T> Default for ListMap<K, T> {
    fn default() -> Self {
        ListMap {
            one: HashMap::new(),
            many: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Copy, T: Clone> ListMap<K, T> {
    /// The list of a key, when it has one (an empty list is a list).
    pub(crate) fn get(&self, key: &K) -> Option<&[T]> {
        if let Some(t) = self.one.get(key) {
            return Some(std::slice::from_ref(t));
        }
        self.many.get(key).map(Vec::as_slice)
    }

    /// Whether the key has a list (perhaps empty).
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.one.contains_key(key) || self.many.contains_key(key)
    }

    /// Sets a key's list, replacing the one it had.
    pub(crate) fn insert(&mut self, key: K, list: Vec<T>) {
        self.remove(&key);
        self.put(key, list);
    }

    /// Sets the list of a key the map does not have (a bulk build from distinct keys: no
    /// lookup for a list to replace).
    pub(crate) fn put_new(&mut self, key: K, list: Vec<T>) {
        self.put(key, list);
    }

    fn put(&mut self, key: K, mut list: Vec<T>) {
        if list.len() == 1
            && let Some(t) = list.pop()
        {
            self.one.insert(key, t);
        } else {
            self.many.insert(key, list);
        }
    }

    /// Removes a key's list and returns it.
    pub(crate) fn remove(&mut self, key: &K) -> Option<Vec<T>> {
        if let Some(t) = self.one.remove(key) {
            return Some(vec![t]);
        }
        self.many.remove(key)
    }

    /// Changes a key's list in place (a missing list is an empty one, and stays a list, even
    /// empty, afterwards).
    pub(crate) fn update(&mut self, key: K, change: impl FnOnce(&mut Vec<T>)) {
        if let Some(list) = self.many.get_mut(&key) {
            // In place: a long list is never copied to add or take one entry.
            change(list);
            if list.len() == 1
                && let Some(list) = self.many.remove(&key)
            {
                self.put(key, list);
            }
            return;
        }
        let mut list = self.remove(&key).unwrap_or_default();
        change(&mut list);
        self.put(key, list);
    }

    /// Every key and its list, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &[T])> {
        self.one
            .iter()
            .map(|(k, t)| (k, std::slice::from_ref(t)))
            .chain(self.many.iter().map(|(k, b)| (k, b.as_slice())))
    }

    /// Room for `additional` more one-entry lists.
    pub(crate) fn reserve_one(&mut self, additional: usize) {
        self.one.reserve(additional);
    }

    /// The heap (`memory.rs`): both tables and the longer lists.
    pub(crate) fn heap(&self) -> usize {
        use crate::memory::{map_heap, vec_heap};
        map_heap(&self.one) + map_heap(&self.many) + self.many.values().map(vec_heap).sum::<usize>()
    }
}

impl<K: Hash + Eq + Copy, T: Clone> FromIterator<(K, Vec<T>)> for ListMap<K, T> {
    fn from_iter<I: IntoIterator<Item = (K, Vec<T>)>>(iter: I) -> Self {
        let mut map = ListMap::default();
        for (k, list) in iter {
            map.insert(k, list);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_every_length_read_back_and_compare_by_content() {
        let mut a: ListMap<u32, (u32, u32)> = ListMap::default();
        assert_eq!(a.get(&1), None);
        a.update(1, |v| v.push((0, 10)));
        assert_eq!(a.get(&1), Some(&[(0, 10)][..]));
        a.update(1, |v| v.push((0, 11)));
        assert_eq!(a.get(&1), Some(&[(0, 10), (0, 11)][..]));
        a.update(1, |v| v.retain(|(_, c)| *c != 10));
        assert_eq!(a.get(&1), Some(&[(0, 11)][..]));
        a.update(1, |v| v.clear());
        assert_eq!(a.get(&1), Some(&[][..]));
        assert!(a.contains_key(&1));
        a.insert(2, vec![(1, 2)]);
        let b: ListMap<u32, (u32, u32)> =
            [(2, vec![(1, 2)]), (1, Vec::new())].into_iter().collect();
        assert_eq!(a, b);
        let mut all: Vec<_> = a.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        all.sort();
        assert_eq!(all, vec![(1, vec![]), (2, vec![(1, 2)])]);
        assert_eq!(a.remove(&2), Some(vec![(1, 2)]));
        assert_eq!(a.remove(&2), None);
        assert!(a.heap() > 0);
    }
}
