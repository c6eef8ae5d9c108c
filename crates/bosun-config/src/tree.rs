//! The TOML document as a tree of values that remember where they were written.
//!
//! `toml` reports spans through `toml::Spanned`, but only where a value has one
//! (implicit tables such as `service` in `[service.web]` do not). This tree asks for
//! a span everywhere and falls back to the key's span, so that every value can be
//! located. The schema walk (`schema.rs`) reads this tree instead of deriving
//! `Deserialize` on raw structs: that way it can report every unknown key and every
//! bad value at once, each with its table and position, not only the first one.

use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

// The private protocol `toml` (via serde_spanned) uses to hand out spans.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
// How `toml` hands out a datetime: a one-entry map.
const DATETIME_FIELD: &str = "$__toml_private_datetime";

/// A value and the byte range it was written at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Byte range in the source (the key's, when the value itself has none).
    pub span: Option<Range<usize>>,
    /// The value.
    pub val: Val,
}

/// A TOML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table, in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Option<Range<usize>>,
    pub node: Node,
}

impl Node {
    /// Byte offset to report problems with this value at.
    pub fn pos(&self) -> usize {
        self.span.as_ref().map(|r| r.start).unwrap_or(0)
    }

    /// A short description of the value for "found …" in messages.
    pub fn found(&self) -> String {
        match &self.val {
            Val::Str(s) => format!("the string {}", quote_short(s)),
            Val::Int(i) => format!("the integer {i}"),
            Val::Float(f) => format!("the float {f}"),
            Val::Bool(b) => format!("the boolean {b}"),
            Val::Datetime(d) => format!("the datetime {d}"),
            Val::Array(_) => "an array".into(),
            Val::Table(_) => "a table".into(),
        }
    }
}

/// `"text"`, credentials masked ([`crate::redact::redact_url`], before the cut, so
/// that no part of a password survives it), cut to a readable length.
pub(crate) fn quote_short(s: &str) -> String {
    const MAX: usize = 60;
    let s = &crate::redact::redact_url(s);
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    }
}

/// Parses a whole document. The error is `toml`'s (a syntax error), with its span.
pub(crate) fn parse_document(text: &str) -> Result<Node, toml::de::Error> {
    let mut root: Node = toml::from_str(text)?;
    if root.span.is_none() {
        root.span = Some(0..0);
    }
    Ok(root)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor)
    }
}

/// Deserializes the value itself (inside a span wrapper): no second span request.
struct Bare;

impl<'de> DeserializeSeed<'de> for Bare {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A table key with its span when the deserializer gives one.
struct Key {
    name: String,
    span: Option<Range<usize>>,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key {
            name: v.to_string(),
            span: None,
        })
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key {
            name: v,
            span: None,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let mut start = None;
        let mut end = None;
        let mut name = None;
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                SPANNED_START => start = Some(map.next_value::<usize>()?),
                SPANNED_END => end = Some(map.next_value::<usize>()?),
                SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                _ => return Err(de::Error::custom("unexpected key structure")),
            }
        }
        let name = name.ok_or_else(|| de::Error::custom("key without a name"))?;
        let span = match (start, end) {
            (Some(s), Some(e)) => Some(s..e),
            _ => None,
        };
        Ok(Key { name, span })
    }
}

struct NodeVisitor;

fn bare(val: Val) -> Node {
    Node { span: None, val }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(bare(Val::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(bare(Val::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(|v| bare(Val::Int(v)))
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(bare(Val::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(bare(Val::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(bare(Val::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(bare(Val::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let first = match map.next_key::<Key>()? {
            None => return Ok(bare(Val::Table(Vec::new()))),
            Some(k) => k,
        };
        match first.name.as_str() {
            SPANNED_START => {
                let start: usize = map.next_value()?;
                let mut end = start;
                let mut value = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        SPANNED_END => end = map.next_value()?,
                        SPANNED_VALUE => value = Some(map.next_value_seed(Bare)?),
                        _ => return Err(de::Error::custom("unexpected span structure")),
                    }
                }
                let mut node = value.ok_or_else(|| de::Error::custom("span without a value"))?;
                node.span = Some(start..end.max(start));
                Ok(node)
            }
            DATETIME_FIELD => {
                let s: String = map.next_value()?;
                Ok(bare(Val::Datetime(s)))
            }
            _ => {
                let mut entries = Vec::new();
                let mut key = Some(first);
                while let Some(k) = key {
                    let mut node: Node = map.next_value()?;
                    if node.span.is_none() {
                        node.span = k.span.clone();
                    }
                    entries.push(Entry {
                        key: k.name,
                        key_span: k.span,
                        node,
                    });
                    key = map.next_key::<Key>()?;
                }
                Ok(bare(Val::Table(entries)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: &Node) -> &[Entry] {
        match &n.val {
            Val::Table(t) => t,
            _ => panic!("not a table"),
        }
    }

    #[test]
    fn spans_everywhere() {
        let text =
            "[service.web]\nrun = [\"a\", \"b\"]\nready = { tcp = \"x:1\" }\nwhen = 1979-05-27\n";
        let root = parse_document(text).unwrap();
        let service = &table(&root)[0];
        assert_eq!(service.key, "service");
        let web = &table(&service.node)[0];
        assert_eq!(web.key, "web");
        assert!(web.node.span.is_some());
        let entries = table(&web.node);
        let run = &entries[0];
        let Val::Array(items) = &run.node.val else {
            panic!()
        };
        let s = items[1].span.clone().unwrap();
        assert_eq!(&text[s], "\"b\"");
        let ready = table(&entries[1].node);
        let k = ready[0].key_span.clone().unwrap();
        assert_eq!(&text[k], "tcp");
        assert_eq!(entries[2].node.val, Val::Datetime("1979-05-27".into()));
    }
}
