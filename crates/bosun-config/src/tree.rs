//! The TOML document as a tree of values that remember where they were written.
//!
//! `toml_edit` parses the text into a document whose keys, values and tables keep
//! their byte spans ([`toml_edit::ImDocument`], `.span()`), but not every item has
//! one (implicit tables such as `service` in `[service.web]` do not). This tree takes
//! a span everywhere and falls back to the key's span, so that every value can be
//! located. The schema walk (`schema/`) reads this tree instead of deriving
//! `Deserialize` on raw structs: that way it can report every unknown key and every
//! bad value at once, each with its table and position, not only the first one.

use std::ops::Range;

use toml_edit::{ImDocument, InlineTable, Item, Key, Table, TomlError, Value};

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

impl Entry {
    /// Byte offset to report problems with this key at (the value's, when the key
    /// has no span).
    pub fn key_pos(&self) -> usize {
        self.key_span
            .as_ref()
            .map(|r| r.start)
            .unwrap_or(self.node.pos())
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

/// Parses a whole document. The error is a TOML syntax error, with its span.
pub(crate) fn parse_document(text: &str) -> Result<Node, TomlError> {
    let doc = ImDocument::parse(text)?;
    let root = doc.as_table();
    Ok(Node {
        span: Some(root.span().unwrap_or(0..0)),
        val: table(root),
    })
}

fn table(t: &Table) -> Val {
    entries(t.iter().map(|(k, item)| (k, t.key(k), item_node(item))))
}

fn inline_table(t: &InlineTable) -> Val {
    entries(t.iter().map(|(k, v)| (k, t.key(k), value_node(v))))
}

/// The entries of a table, in file order. A value without a span of its own (an
/// implicit table such as `service` in `[service.web]`) is located at its key.
fn entries<'t>(items: impl Iterator<Item = (&'t str, Option<&'t Key>, Node)>) -> Val {
    let entries = items
        .map(|(name, key, mut node)| {
            let key_span = key.and_then(Key::span);
            if node.span.is_none() {
                node.span = key_span.clone();
            }
            Entry {
                key: name.to_string(),
                key_span,
                node,
            }
        })
        .collect();
    Val::Table(entries)
}

fn item_node(item: &Item) -> Node {
    let val = match item {
        Item::Value(v) => return value_node(v),
        Item::Table(t) => table(t),
        Item::ArrayOfTables(a) => Val::Array(
            a.iter()
                .map(|t| Node {
                    span: t.span(),
                    val: table(t),
                })
                .collect(),
        ),
        // Never made by the parser (`Table::iter` skips it anyway).
        Item::None => Val::Table(Vec::new()),
    };
    Node {
        span: item.span(),
        val,
    }
}

fn value_node(v: &Value) -> Node {
    let val = match v {
        Value::String(s) => Val::Str(s.value().clone()),
        Value::Integer(i) => Val::Int(*i.value()),
        Value::Float(f) => Val::Float(*f.value()),
        Value::Boolean(b) => Val::Bool(*b.value()),
        Value::Datetime(d) => Val::Datetime(d.value().to_string()),
        Value::Array(a) => Val::Array(a.iter().map(value_node).collect()),
        Value::InlineTable(t) => inline_table(t),
    };
    Node {
        span: v.span(),
        val,
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

    #[test]
    fn implicit_tables_are_located_at_their_key() {
        let text = "[service.web]\nrun = \"x\"\n[[task.a.b]]\nenv.X = 1\n";
        let root = parse_document(text).unwrap();
        let service = &table(&root)[0];
        // `service` exists only as part of the header: its key is its place.
        assert_eq!(service.node.span, service.key_span);
        assert_eq!(&text[service.node.span.clone().unwrap()], "service");
        let task = &table(&root)[1];
        let a = &table(&task.node)[0];
        let b = &table(&a.node)[0];
        let Val::Array(tables) = &b.node.val else {
            panic!("an array of tables")
        };
        let env = &table(&tables[0])[0];
        assert_eq!(&text[env.node.span.clone().unwrap()], "env");
    }

    #[test]
    fn a_syntax_error_has_a_span() {
        let e = parse_document("[service.web\nrun = 1\n").unwrap_err();
        assert!(e.span().is_some());
        assert!(!e.message().is_empty());
    }
}
