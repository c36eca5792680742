//! [`Name`]: the text of a factory name or a delivery id, static or shared.
//!
//! What `#[factory]` declares is text in the binary (`&'static str`). What an instance sets at
//! run time (`with_id("orders")`, and the name `ReadTable[orders]` made from it) is shared by
//! the signatures and events that mention it and freed with the last of them, so a process that
//! builds pipelines with ever new ids holds only the ids of the pipelines it still has.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A factory name or a delivery id: text declared in code, or set on an instance at run time.
///
/// Cheap to clone (a pointer copy, or one reference count), and it reads, compares, hashes and
/// prints as its text: `name == "ReadTable[orders]"`, `&*name`, `format!("{name}")`.
///
/// # Examples
///
/// ```
/// use setl_core::Name;
///
/// let declared = Name::from("orders");
/// let built = Name::from(format!("{}", "orders"));
/// assert_eq!(declared, built);
/// assert_eq!(declared, "orders");
/// assert_eq!(built.len(), 6);
/// ```
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    /// Text in the binary: nothing to free.
    Static(&'static str),
    /// Text made at run time, freed with its last clone.
    Shared(Arc<str>),
}

impl Name {
    /// The empty name: no delivery id.
    pub const EMPTY: Name = Name(Repr::Static(""));

    /// A name for text in the binary; allocates nothing.
    pub const fn from_static(text: &'static str) -> Self {
        Name(Repr::Static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            Repr::Shared(text) => text,
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::EMPTY
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Name {
    fn from(text: &'static str) -> Self {
        Name::from_static(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name(Repr::Shared(text.into()))
    }
}

impl From<Arc<str>> for Name {
    fn from(text: Arc<str>) -> Self {
        Name(Repr::Shared(text))
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.as_str().to_owned()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// Hashes as its text, as `Borrow<str>` requires.
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its text's: `"orders"`.
impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The factory type in a factory's name: `ReadTable` for the instance `ReadTable[orders]`.
pub(crate) fn factory_type_name(name: &str) -> &str {
    name.split_once('[').map_or(name, |(type_name, _)| type_name)
}

#[cfg(test)]
mod tests {
    use super::Name;
    use std::collections::HashSet;

    #[test]
    fn static_and_shared_names_of_one_text_are_one_name() {
        let shared = Name::from(String::from("orders"));
        assert_eq!(shared, Name::from_static("orders"));
        assert_eq!(shared, "orders");
        assert_eq!("orders", shared);
        assert_eq!(format!("{shared} {shared:?}"), "orders \"orders\"");
        let set: HashSet<Name> = [shared.clone(), Name::from("orders")].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(set.contains("orders"));
        assert_eq!(Name::default(), "");
    }
}
