//! Readable type names for messages and diagrams.

/// Strips module paths from a `std::any::type_name`, keeping generics:
/// `alloc::vec::Vec<core::option::Option<i64>>` becomes `Vec<Option<i64>>`.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (index, ch) in full.char_indices() {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            continue;
        }
        out.push_str(last_segment(&full[segment_start..index]));
        out.push(ch);
        segment_start = index + ch.len_utf8();
    }
    out.push_str(last_segment(&full[segment_start..]));
    out
}

fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn strips_paths_but_keeps_generics_tuples_and_references() {
        assert_eq!(short_type_name("i64"), "i64");
        assert_eq!(short_type_name("alloc::vec::Vec<core::option::Option<i64>>"), "Vec<Option<i64>>");
        assert_eq!(
            short_type_name("std::collections::hash::map::HashMap<alloc::string::String, (u8, &str)>"),
            "HashMap<String, (u8, &str)>"
        );
        assert_eq!(short_type_name("[my_crate::Row; 3]"), "[Row; 3]");
    }
}
