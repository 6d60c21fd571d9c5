//! A checkpoint decoded gives back the organisation it was taken from: the canonical dump, the
//! names, the seen columns, the derived indexes and the record index (rebuilt) all equal — on
//! random organisations after random changes of every kind, on the demo and on the generated
//! organisation, the records' stamps (D165) too. The record index a checkpoint holds (format 4,
//! D120) equals a rebuild, the state alone (format 3) loads, and bad bytes or an index that does not
//! fit the records are refused, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::Rng;
use common::steps::{KINDS, assert_same, start, step};
use proptest::prelude::*;
use strata_checkpoint::{DecodeError, decode, decode_parts, decode_state, encode, encode_state};
use strata_engine::Organization;

fn round_trip(org: &Organization, context: &str) -> Vec<u8> {
    let bytes = encode(org);
    let back = decode(&bytes).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_same(&back, org, context);
    // The record index came from the bytes, and equals a rebuild from the records.
    assert!(back.record_index_is_current(), "{context}: loaded index");
    // The state alone (format 3) loads, its index rebuilt.
    let old = decode(&encode_state(&org.state_ref())).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_same(&old, org, &format!("{context} (format 3)"));
    // Encoding the decoded organisation gives the same bytes.
    assert_eq!(
        encode(&back),
        bytes,
        "{context}: bytes of the decoded organisation"
    );
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// A random organisation after random changes of every kind comes back the same.
    #[test]
    fn random_organisations_come_back(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 0..24)) {
        let (mut org, mut rng) = start(seed);
        for (i, kind) in kinds.iter().enumerate() {
            let _ = step(&mut org, &mut rng, *kind, &format!("s{i}"));
        }
        round_trip(&org, &format!("seed {seed}, kinds {kinds:?}"));
    }
}

/// Every kind of change, one after the other, on one organisation: the checkpoint keeps up.
#[test]
fn every_kind_of_change() {
    let (mut org, mut rng) = start(7);
    for kind in 0..KINDS {
        for i in 0..3 {
            let _ = step(&mut org, &mut rng, kind, &format!("k{kind}-{i}"));
        }
        round_trip(&org, &format!("after kind {kind}"));
    }
    // And the decoded organisation goes on like the original: the same next changes.
    let bytes = encode(&org);
    let mut back = decode(&bytes).unwrap();
    for kind in 0..KINDS {
        let (mut a, mut b) = (Rng(kind as u64 + 11), Rng(kind as u64 + 11));
        let ra = step(&mut org, &mut a, kind, "next");
        let rb = step(&mut back, &mut b, kind, "next");
        assert_eq!(ra, rb, "kind {kind} after decoding");
    }
    assert_same(&back, &org, "after further changes");
}

#[test]
fn the_demo_comes_back() {
    let org = strata_demo::organization(50).unwrap();
    round_trip(&org, "demo");
}

#[test]
fn the_generated_organisation_comes_back() {
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &strata_demo::generate::setup(3)).unwrap();
    strata_ops::apply_all(&mut org, &strata_demo::generate::records(3, 0, 5_000)).unwrap();
    let before = round_trip(&org, "generated").len();
    let state_before = encode_state(&org.state_ref()).len();
    strata_ops::apply_all(&mut org, &strata_demo::generate::records(3, 5_000, 10_000)).unwrap();
    let after = round_trip(&org, "generated, more records").len();
    let state_after = encode_state(&org.state_ref()).len();
    // A generated record (key, owner, unit, five column values, a share now and then) takes
    // well under 100 bytes; its place in the record index (bitmaps, column indexes) under 100
    // too at this size, where most owners' bitmaps hold one record each (about 40 bytes at a
    // million records, BENCHMARKS.md).
    let state = (state_after - state_before) / 5_000;
    assert!(state < 100, "{state} bytes per record");
    let index = (after - state_after).saturating_sub(before - state_before) / 5_000;
    assert!(index < 100, "{index} bytes of index per record");
}

/// A record index that does not fit the records it comes with is refused (the load goes on to
/// an older checkpoint or the whole log), whatever part is wrong.
#[test]
fn an_index_that_does_not_fit_is_refused() {
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &strata_demo::generate::setup(3)).unwrap();
    strata_ops::apply_all(&mut org, &strata_demo::generate::records(3, 0, 3_000)).unwrap();
    let bytes = encode(&org);
    let refused = |change: &dyn Fn(&mut Vec<strata_engine::TableIndexParts>)| {
        let (state, index) = decode_parts(&bytes).unwrap();
        let mut index = index.unwrap();
        change(&mut index);
        let e = Organization::from_state_with_index(state, Some(index.clone())).unwrap_err();
        assert_eq!(e.code(), "bad_state");
        // A load repairs it instead (D137): the index rebuilt from the records, the problem
        // reported, the organisation the same as the one encoded.
        let (state, _) = decode_parts(&bytes).unwrap();
        let (repaired, problem) =
            Organization::from_state_repairing_index(state, Some(index)).unwrap();
        assert_eq!(problem.unwrap().code(), "bad_state");
        assert_eq!(repaired.differences(&org), Vec::<&str>::new());
    };
    // Untouched, nothing is repaired.
    let (loaded, problem) = strata_checkpoint::decode_owned(bytes.clone()).unwrap();
    assert!(problem.is_none());
    assert!(loaded.differences(&org).is_empty());
    let busy = |index: &Vec<strata_engine::TableIndexParts>| {
        index
            .iter()
            .position(|t| !t.by_user.is_empty() && !t.columns.is_empty())
            .unwrap()
    };
    // A record that is not live, in an owner's bitmap.
    refused(&|index| {
        let t = busy(index);
        index[t].by_user[0].1.insert(org_records_end());
    });
    // A live record missing from the live records.
    refused(&|index| {
        let t = busy(index);
        let first = index[t].live.min().unwrap();
        index[t].live.remove(first);
    });
    // An owner that is not a user.
    refused(&|index| {
        let t = busy(index);
        index[t].by_user[0].0 = strata_engine::UserId::from_raw(1_000_000);
    });
    // A declared column without its index, or with a record missing or out of range.
    refused(&|index| {
        let t = busy(index);
        index[t].columns.pop();
    });
    refused(&|index| {
        let t = busy(index);
        let c = index[t]
            .columns
            .iter()
            .position(|c| !c.rare.is_empty())
            .unwrap();
        index[t].columns[c].rare.pop();
    });
    refused(&|index| {
        let t = busy(index);
        let c = index[t]
            .columns
            .iter()
            .position(|c| !c.rare.is_empty())
            .unwrap();
        index[t].columns[c].rare[0] = org_records_end();
    });
    // A record listed twice by a column (and another left out).
    refused(&|index| {
        let t = busy(index);
        let c = index[t]
            .columns
            .iter()
            .position(|c| c.rare.len() > 1)
            .unwrap();
        index[t].columns[c].rare[1] = index[t].columns[c].rare[0];
    });
    // A live record moved to another owner's bitmap (an index that would list it to the
    // wrong user), or to another unit's, or present twice.
    refused(&|index| {
        let t = busy(index);
        assert!(index[t].by_user.len() > 1, "the test needs two owners");
        let id = index[t].by_user[0].1.min().unwrap();
        index[t].by_user[0].1.remove(id);
        index[t].by_user[1].1.insert(id);
    });
    refused(&|index| {
        let t = busy(index);
        assert!(index[t].by_unit.len() > 1, "the test needs two units");
        let id = index[t].by_unit[0].1.min().unwrap();
        index[t].by_unit[0].1.remove(id);
        index[t].by_unit[1].1.insert(id);
    });
    refused(&|index| {
        let t = busy(index);
        let id = index[t].by_user[0].1.min().unwrap();
        index[t].by_user[1].1.insert(id);
    });
    // A read share left out, moved to another principal, or given to a record not shared.
    let shared = |index: &Vec<strata_engine::TableIndexParts>| {
        index
            .iter()
            .position(|t| t.shared_read.len() > 1)
            .expect("the test needs two principals with read shares")
    };
    refused(&|index| {
        let t = shared(index);
        let id = index[t].shared_read[0].1.min().unwrap();
        index[t].shared_read[0].1.remove(id);
    });
    refused(&|index| {
        let t = shared(index);
        let id = index[t].shared_read[0].1.min().unwrap();
        index[t].shared_read[0].1.remove(id);
        if !index[t].shared_read[1].1.insert(id) {
            index[t].shared_read[1].1.remove(id);
        }
    });
    refused(&|index| {
        let t = shared(index);
        let unshared = index[t]
            .live
            .iter()
            .find(|id| !index[t].shared_read[0].1.contains(*id))
            .unwrap();
        index[t].shared_read[0].1.insert(unshared);
    });
    // A record of one table among another's live records and units (refused as live records
    // that differ from the table's list).
    refused(&|index| {
        let t = busy(index);
        let other = index
            .iter()
            .position(|o| !o.live.is_empty() && !std::ptr::eq(o, &index[t]))
            .unwrap();
        let id = index[other].live.min().unwrap();
        index[t].live.insert(id);
        index[t].by_unit[0].1.insert(id);
    });
    // A table with records left out.
    refused(&|index| {
        index.truncate(busy(index));
    });
    // Untouched, it loads.
    let (state, index) = decode_parts(&bytes).unwrap();
    let back = Organization::from_state_with_index(state, index).unwrap();
    assert!(back.record_index_is_current());
}

/// An id past every record of the generated organisation of `an_index_that_does_not_fit…`.
fn org_records_end() -> u32 {
    4_000_000
}

#[test]
fn bad_bytes_are_refused() {
    let (org, _) = start(99);
    let bytes = encode(&org);
    // Every truncation.
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
    }
    // A trailing byte.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(DecodeError::Malformed { .. })
    ));
    // Another magic or version.
    let mut other = bytes.clone();
    other[0] = b'X';
    assert!(matches!(decode(&other), Err(DecodeError::NotACheckpoint)));
    let mut other = bytes.clone();
    other[4] = 2;
    assert!(matches!(decode(&other), Err(DecodeError::Version(2))));
    // Every single byte changed in turn: refused or decoded, never a panic.
    for i in 8..bytes.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] = b[i].wrapping_add(delta);
            let _ = decode(&b);
        }
    }
}

#[test]
fn an_id_out_of_range_is_refused() {
    let (org, _) = start(5);
    let mut state = decode_state(&encode(&org)).unwrap();
    let n = state.users.len() as u32;
    state.records[0].owner = strata_engine::Owner::User(strata_engine::UserId::from_raw(n + 5));
    let e = Organization::from_state(state).unwrap_err();
    assert_eq!(e.code(), "bad_state");
    let mut state = decode_state(&encode(&org)).unwrap();
    let last = state.units.len() - 1;
    state.units[0].parent = Some(strata_engine::BusinessUnitId::from_raw(last as u32));
    state.units[last].parent = Some(strata_engine::BusinessUnitId::from_raw(0));
    assert_eq!(
        Organization::from_state(state).unwrap_err().code(),
        "bad_state"
    );
}
