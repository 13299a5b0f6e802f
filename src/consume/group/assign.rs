//! Sticky, balanced assignment of a topic's partitions to a group's members.
//!
//! Owns one pure function: given the partition count, the live members and
//! who owned what before, decide who owns what now. It never touches cursors
//! or files; the coordinator applies its result under its lock.

use std::collections::BTreeMap;

/// Member ids are handed out by the coordinator, never reused.
pub(crate) type MemberId = u64;

/// New owners per partition (`None` only when there are no members).
///
/// Balanced: member partition counts differ by at most one. Sticky: a member
/// keeps as many of its current partitions as its new quota allows; the
/// members that get the larger quota are those already holding the most.
pub(crate) fn sticky_assignment(
    partitions: usize,
    members: &[MemberId],
    previous: &[Option<MemberId>],
) -> Vec<Option<MemberId>> {
    if members.is_empty() {
        return vec![None; partitions];
    }
    let mut held: BTreeMap<MemberId, Vec<usize>> = members.iter().map(|&m| (m, vec![])).collect();
    for (p, owner) in previous.iter().enumerate().take(partitions) {
        if let Some(list) = owner.and_then(|m| held.get_mut(&m)) {
            list.push(p);
        }
    }
    let base = partitions / members.len();
    let extra = partitions % members.len();
    // Larger quotas go to the members holding the most, so fewer partitions move.
    let mut by_holding: Vec<MemberId> = members.to_vec();
    by_holding.sort_by_key(|m| (std::cmp::Reverse(held.get(m).map_or(0, Vec::len)), *m));
    let quota: BTreeMap<MemberId, usize> = by_holding
        .iter()
        .enumerate()
        .map(|(i, &m)| (m, base + usize::from(i < extra)))
        .collect();
    // Every member has a quota and a (possibly empty) holding list, and
    // every held partition is below `partitions`.
    let quota_of = |m: &MemberId| quota.get(m).copied().unwrap_or(0);
    let mut owner = vec![None; partitions];
    let mut count: BTreeMap<MemberId, usize> = BTreeMap::new();
    for (&m, list) in &held {
        for &p in list.iter().take(quota_of(&m)) {
            if let Some(slot) = owner.get_mut(p) {
                *slot = Some(m);
            }
        }
        count.insert(m, list.len().min(quota_of(&m)));
    }
    let mut hungry = by_holding.iter().flat_map(|m| {
        let kept = count.get(m).copied().unwrap_or(0);
        std::iter::repeat_n(*m, quota_of(m).saturating_sub(kept))
    });
    for slot in owner.iter_mut().filter(|o| o.is_none()) {
        *slot = hungry.next();
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(owner: &[Option<MemberId>], members: &[MemberId]) -> Vec<usize> {
        members
            .iter()
            .map(|m| owner.iter().filter(|o| **o == Some(*m)).count())
            .collect()
    }

    #[test]
    fn a_joining_member_takes_only_its_share() {
        let one = sticky_assignment(6, &[1], &[]);
        assert_eq!(one, vec![Some(1); 6]);
        let two = sticky_assignment(6, &[1, 2], &one);
        assert_eq!(counts(&two, &[1, 2]), [3, 3]);
        let moved = one.iter().zip(&two).filter(|(a, b)| a != b).count();
        assert_eq!(moved, 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn every_partition_owned_balanced_and_sticky(
            partitions in 0usize..20,
            members in proptest::collection::btree_set(0u64..8, 1..6),
            previous in proptest::collection::vec(proptest::option::of(0u64..8), 0..20),
        ) {
            let members: Vec<_> = members.into_iter().collect();
            let owner = sticky_assignment(partitions, &members, &previous);
            prop_assert_eq!(owner.len(), partitions);
            prop_assert!(owner.iter().all(|o| o.is_some_and(|m| members.contains(&m))));
            let c = counts(&owner, &members);
            let (lo, hi) = (c.iter().min().copied().unwrap_or(0), c.iter().max().copied().unwrap_or(0));
            prop_assert!(hi - lo <= 1, "unbalanced {:?}", c);
            // Sticky: a partition whose previous owner is still a member and
            // kept at most its quota stays put.
            let base = partitions / members.len();
            for (p, prev) in previous.iter().enumerate().take(partitions) {
                if let Some(m) = prev.filter(|m| members.contains(m)) {
                    let held = previous.iter().take(partitions).filter(|o| **o == Some(m)).count();
                    if held <= base {
                        prop_assert_eq!(owner[p], Some(m));
                    }
                }
            }
        }
    }
}
