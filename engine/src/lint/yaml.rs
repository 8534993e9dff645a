//! YAML documents as trees that remember where each node starts.
//!
//! Violations must name the line of the offending object, which serde-based
//! decoders throw away; so the parser's event stream (granit-parser, the
//! maintained YAML 1.2 parser that kube's own kubeconfig decoder already
//! uses) is folded into a small tree whose every node carries its line and
//! column.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScanError, Span};

/// Deepest nesting accepted: Kubernetes objects are a few dozen levels deep,
/// and a hostile file must not exhaust the stack of a recursive walk.
const MAX_DEPTH: usize = 256;

/// A position in the source: line 1-based, column 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn of(span: &Span) -> Position {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub at: Position,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Every scalar as its text: label and annotation values are strings in
    /// Kubernetes, and `true` and `"true"` select the same label.
    Scalar(String),
    Sequence(Vec<Node>),
    /// Entries in source order; a repeated key keeps its last value, as the
    /// Kubernetes API server's decoder does.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Mapping(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node of `key` in a mapping (its position is the key's line).
    pub fn key(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Mapping(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, _)| k),
            _ => None,
        }
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Sequence(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_mapping(&self) -> bool {
        matches!(self.value, Value::Mapping(_))
    }

    /// A mapping of strings (labels, annotations) with each key's position.
    pub fn string_map(&self) -> Vec<(&str, &str, Position)> {
        match &self.value {
            Value::Mapping(entries) => entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?, v.as_str().unwrap_or(""), k.at)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Why a YAML text could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl From<ScanError> for YamlError {
    fn from(e: ScanError) -> Self {
        YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info(),
        }
    }
}

/// Parses every document of a YAML stream. Empty documents (a lone `---`,
/// common in `helm template` output) come back as `None`.
pub fn parse_documents(text: &str) -> Result<Vec<Option<Node>>, YamlError> {
    let mut builder = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item?;
        builder.event(event, &span)?;
    }
    Ok(builder.documents)
}

/// A collection being filled.
#[derive(Debug)]
enum Open {
    Sequence {
        at: Position,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        at: Position,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

#[derive(Debug, Default)]
struct Builder {
    documents: Vec<Option<Node>>,
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let at = Position::of(span);
        match event {
            Event::DocumentStart(..) => {
                self.root = None;
                self.anchors.clear();
            }
            Event::DocumentEnd => self.documents.push(self.root.take()),
            Event::Scalar(text, _, anchor, _) => {
                let node = Node {
                    at,
                    value: Value::Scalar(text.into_owned()),
                };
                self.remember(anchor, &node);
                self.push(node);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    line: at.line,
                    column: at.column,
                    message: "alias to an unknown anchor".into(),
                })?;
                self.push(node);
            }
            Event::SequenceStart(_, anchor, _) => self.open(
                Open::Sequence {
                    at,
                    anchor,
                    items: Vec::new(),
                },
                at,
            )?,
            Event::MappingStart(_, anchor, _) => self.open(
                Open::Mapping {
                    at,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                },
                at,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Sequence { at, anchor, items }) => (
                        Node {
                            at,
                            value: Value::Sequence(items),
                        },
                        anchor,
                    ),
                    Some(Open::Mapping {
                        at,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            at,
                            value: Value::Mapping(entries),
                        },
                        anchor,
                    ),
                    None => {
                        return Err(YamlError {
                            line: at.line,
                            column: at.column,
                            message: "unbalanced collection end".into(),
                        })
                    }
                };
                self.remember(anchor, &node);
                self.push(node);
            }
            // Stream markers, comments and anchor metadata carry no data.
            _ => {}
        }
        Ok(())
    }

    fn open(&mut self, open: Open, at: Position) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                line: at.line,
                column: at.column,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(open);
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let docs = parse_documents(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\n",
        )
        .expect("valid");
        assert_eq!(docs.len(), 1);
        let pod = docs[0].as_ref().expect("a document");
        assert_eq!(pod.at.line, 1);
        assert_eq!(pod.get("kind").and_then(Node::as_str), Some("Pod"));
        let labels = pod.path(&["metadata", "labels"]).expect("labels");
        assert_eq!(labels.at.line, 6);
        assert_eq!(labels.string_map()[0].0, "app");
        assert_eq!(pod.key("metadata").map(|k| k.at.line), Some(3));
    }

    #[test]
    fn several_documents_and_empty_ones() {
        let docs =
            parse_documents("---\n# a comment only\n---\na: 1\n---\nb: [x, y]\n").expect("valid");
        assert_eq!(docs.len(), 3);
        // An empty document is null: no object in it.
        assert!(!docs[0].as_ref().is_some_and(Node::is_mapping));
        assert_eq!(docs[1].as_ref().map(|d| d.at.line), Some(4));
        let b = docs[2].as_ref().and_then(|d| d.get("b")).expect("b");
        assert_eq!(b.as_sequence().map(<[Node]>::len), Some(2));
    }

    #[test]
    fn aliases_resolve_to_the_anchored_node() {
        let docs = parse_documents("base: &l {app: web}\nother: *l\n").expect("valid");
        let d = docs[0].as_ref().expect("doc");
        assert_eq!(
            d.path(&["other", "app"]).and_then(Node::as_str),
            Some("web")
        );
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n---\n").expect_err("unclosed flow");
        assert!(err.line >= 2, "{err}");
        let err = parse_documents("kind: Pod\nmetadata:\n  name: x\n bad: indent\n")
            .expect_err("bad indentation");
        assert_eq!(err.line, 4, "{err}");
    }

    #[test]
    fn hostile_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(10_000);
        // The parser's own recursion limit or ours, whichever comes first.
        let err = parse_documents(&text).expect_err("too deep");
        assert_eq!(err.line, 1, "{err}");
    }
}
