//! The business unit tree: one root, any depth, with an Euler-tour numbering so that
//! "is unit A in the subtree of unit B" is two integer comparisons.

use crate::error::ModelError;
use crate::ids::BusinessUnitId;
use crate::limits::MAX_BUSINESS_UNIT_DEPTH;

#[derive(Clone, Debug)]
struct Node {
    name: String,
    parent: Option<BusinessUnitId>,
    children: Vec<BusinessUnitId>,
    enter: u32,
    exit: u32,
    level: u32,
}

/// The tree of business units. Cycles cannot be built: a unit is added under an existing
/// parent, and a move is refused when the new parent lies in the moved subtree.
#[derive(Clone, Debug, Default)]
pub struct UnitTree {
    nodes: Vec<Node>,
}

impl UnitTree {
    /// The tree's heap (`memory.rs`).
    pub(crate) fn heap(&self) -> usize {
        crate::memory::vec_heap(&self.nodes)
            + self
                .nodes
                .iter()
                .map(|n| crate::memory::str_heap(&n.name) + crate::memory::vec_heap(&n.children))
                .sum::<usize>()
    }

    /// Every unit as stored in a checkpoint (`state.rs`).
    pub(crate) fn nodes(&self) -> Vec<crate::state::UnitNode> {
        self.nodes
            .iter()
            .map(|n| crate::state::UnitNode {
                name: n.name.clone(),
                parent: n.parent,
                children: n.children.clone(),
                enter: n.enter,
                exit: n.exit,
                level: n.level,
            })
            .collect()
    }

    /// The tree a checkpoint stored, as it was (ids checked by the caller).
    pub(crate) fn from_nodes(nodes: Vec<crate::state::UnitNode>) -> UnitTree {
        UnitTree {
            nodes: nodes
                .into_iter()
                .map(|n| Node {
                    name: n.name,
                    parent: n.parent,
                    children: n.children,
                    enter: n.enter,
                    exit: n.exit,
                    level: n.level,
                })
                .collect(),
        }
    }

    /// Adds the root (when `parent` is `None`) or a child unit.
    pub(crate) fn add(
        &mut self,
        name: &str,
        parent: Option<BusinessUnitId>,
    ) -> Result<BusinessUnitId, ModelError> {
        let id = BusinessUnitId::from_index(self.nodes.len());
        let level = match parent {
            None if !self.nodes.is_empty() => {
                return Err(ModelError::SecondRoot {
                    unit: name.to_owned(),
                    root: self.nodes[0].name.clone(),
                });
            }
            None => 0,
            Some(p) => self.nodes[p.index()].level + 1,
        };
        if level as usize > MAX_BUSINESS_UNIT_DEPTH {
            return Err(ModelError::TooDeep {
                what: "business unit tree",
                name: name.to_owned(),
                limit: MAX_BUSINESS_UNIT_DEPTH,
            });
        }
        self.nodes.push(Node {
            name: name.to_owned(),
            parent,
            children: Vec::new(),
            enter: 0,
            exit: 0,
            level,
        });
        if let Some(p) = parent {
            self.nodes[p.index()].children.push(id);
        }
        self.renumber();
        Ok(id)
    }

    /// Gives `unit` another name (the organisation keeps its name index in step).
    pub(crate) fn rename(&mut self, unit: BusinessUnitId, name: &str) {
        name.clone_into(&mut self.nodes[unit.index()].name);
    }

    /// Moves `unit` (with its subtree) under `new_parent`.
    pub(crate) fn move_unit(
        &mut self,
        unit: BusinessUnitId,
        new_parent: BusinessUnitId,
    ) -> Result<(), ModelError> {
        let Some(old_parent) = self.nodes[unit.index()].parent else {
            return Err(ModelError::MoveRoot {
                unit: self.name(unit).to_owned(),
            });
        };
        if self.contains(unit, new_parent) {
            return Err(ModelError::Cycle {
                what: "business unit",
                name: self.name(unit).to_owned(),
            });
        }
        let height = self.height(unit);
        if self.nodes[new_parent.index()].level as usize + 1 + height > MAX_BUSINESS_UNIT_DEPTH {
            return Err(ModelError::TooDeep {
                what: "business unit tree",
                name: self.name(unit).to_owned(),
                limit: MAX_BUSINESS_UNIT_DEPTH,
            });
        }
        self.nodes[old_parent.index()]
            .children
            .retain(|c| *c != unit);
        self.nodes[new_parent.index()].children.push(unit);
        self.nodes[unit.index()].parent = Some(new_parent);
        self.renumber();
        Ok(())
    }

    fn height(&self, unit: BusinessUnitId) -> usize {
        self.nodes[unit.index()]
            .children
            .iter()
            .map(|c| 1 + self.height(*c))
            .max()
            .unwrap_or(0)
    }

    fn renumber(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        let mut counter = 0u32;
        let mut stack = vec![(BusinessUnitId::from_index(0), false, 0u32)];
        while let Some((id, done, level)) = stack.pop() {
            if done {
                self.nodes[id.index()].exit = counter;
                continue;
            }
            let node = &mut self.nodes[id.index()];
            node.enter = counter;
            node.level = level;
            counter += 1;
            stack.push((id, true, level));
            for c in node.children.iter().rev() {
                stack.push((*c, false, level + 1));
            }
        }
    }

    /// The root unit ("the organization"), if the tree has one.
    #[must_use]
    pub fn root(&self) -> Option<BusinessUnitId> {
        (!self.nodes.is_empty()).then(|| BusinessUnitId::from_index(0))
    }

    /// Number of units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has no unit yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every unit id.
    pub fn ids(&self) -> impl Iterator<Item = BusinessUnitId> + use<> {
        (0..self.nodes.len()).map(BusinessUnitId::from_index)
    }

    /// The unit's name.
    #[must_use]
    pub fn name(&self, unit: BusinessUnitId) -> &str {
        &self.nodes[unit.index()].name
    }

    /// The unit's parent (`None` for the root).
    #[must_use]
    pub fn parent(&self, unit: BusinessUnitId) -> Option<BusinessUnitId> {
        self.nodes[unit.index()].parent
    }

    /// The unit's direct children.
    #[must_use]
    pub fn children(&self, unit: BusinessUnitId) -> &[BusinessUnitId] {
        &self.nodes[unit.index()].children
    }

    /// Distance from the root.
    #[must_use]
    pub fn level(&self, unit: BusinessUnitId) -> usize {
        self.nodes[unit.index()].level as usize
    }

    /// Whether `descendant` is `ancestor` or lies anywhere below it.
    #[must_use]
    pub fn contains(&self, ancestor: BusinessUnitId, descendant: BusinessUnitId) -> bool {
        let a = &self.nodes[ancestor.index()];
        let d = &self.nodes[descendant.index()];
        a.enter <= d.enter && d.exit <= a.exit
    }

    /// The units from `unit` up to the root, `unit` first.
    pub fn ancestors(&self, unit: BusinessUnitId) -> impl Iterator<Item = BusinessUnitId> + '_ {
        std::iter::successors(Some(unit), |u| self.parent(*u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Result<(UnitTree, Vec<BusinessUnitId>), ModelError> {
        let mut t = UnitTree::default();
        let root = t.add("Contoso", None)?;
        let sales = t.add("Sales", Some(root))?;
        let na = t.add("Sales NA", Some(sales))?;
        let east = t.add("East", Some(na))?;
        let service = t.add("Service", Some(root))?;
        Ok((t, vec![root, sales, na, east, service]))
    }

    #[test]
    fn subtree_membership() -> Result<(), ModelError> {
        let (t, ids) = tree()?;
        let [root, sales, na, east, service] = ids[..] else {
            return Err(ModelError::MoveRoot {
                unit: String::new(),
            });
        };
        assert!(t.contains(root, east));
        assert!(t.contains(sales, east));
        assert!(t.contains(east, east));
        assert!(!t.contains(service, east));
        assert!(!t.contains(east, na));
        assert_eq!(t.level(east), 3);
        Ok(())
    }

    #[test]
    fn moving_a_unit_moves_its_subtree_and_refuses_cycles() -> Result<(), ModelError> {
        let (mut t, ids) = tree()?;
        let [root, sales, na, east, service] = ids[..] else {
            return Err(ModelError::MoveRoot {
                unit: String::new(),
            });
        };
        t.move_unit(na, service)?;
        assert!(t.contains(service, east));
        assert!(!t.contains(sales, east));
        assert_eq!(t.level(east), 3);
        assert!(matches!(
            t.move_unit(service, east),
            Err(ModelError::Cycle { .. })
        ));
        assert!(matches!(
            t.move_unit(root, sales),
            Err(ModelError::MoveRoot { .. })
        ));
        assert!(matches!(
            t.add("Other", None),
            Err(ModelError::SecondRoot { .. })
        ));
        Ok(())
    }
}
