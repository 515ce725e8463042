//! Body type names: each distinct `type` a node sends gets a small id for the counters and
//! the message log, up to [`TYPE_NAMES_MAX`] names of at most [`TYPE_BYTES_MAX`] bytes;
//! beyond that a type is counted as [`OTHER_TYPE`] and the sender is faulty for it.

use super::{State, OTHER_TYPE, TYPE_BYTES_MAX, TYPE_NAMES_MAX};

/// Counts one message of body type `ty`; returns the index its name has in
/// `type_names` and, when it was counted as [`OTHER_TYPE`], the fault kind that says why.
pub(super) fn count_type(st: &mut State, ty: &str) -> (u16, Option<&'static str>) {
    if let Some((c, id)) = st.type_counts.get_mut(ty) {
        *c += 1;
        return (*id, None);
    }
    let folded = if ty.len() > TYPE_BYTES_MAX {
        Some("long_type")
    } else if st.type_names.len() >= TYPE_NAMES_MAX {
        Some("too_many_types")
    } else {
        None
    };
    let name = if folded.is_some() { OTHER_TYPE } else { ty };
    if let Some((c, id)) = st.type_counts.get_mut(name) {
        *c += 1;
        return (*id, folded);
    }
    let id = u16::try_from(st.type_names.len()).expect("TYPE_NAMES_MAX < u16::MAX");
    st.type_names.push(name.to_string());
    st.type_counts.insert(name.to_string(), (1, id));
    (id, folded)
}
