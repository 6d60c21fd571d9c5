//! A YAML document as a tree of nodes that remember their line, so that every load error can
//! name the line it comes from.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and the line (1-based) where it starts.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// 1-based line.
    pub line: usize,
}

/// The value of a node.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A scalar's text; `quoted` when it was written in quotes or as a block.
    Scalar { text: String, quoted: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// The deepest nesting of lists and mappings in a scenario file.
pub const MAX_YAML_DEPTH: usize = 64;
/// The most nodes in a scenario file, aliases expanded (no "billion laughs").
pub const MAX_YAML_NODES: usize = 1_000_000;
/// The largest scenario file, in bytes.
pub const MAX_YAML_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<usize>)>,
    pending_keys: Vec<Option<Node>>,
    /// Each anchor's node and its size in nodes.
    anchors: std::collections::HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    error: Option<(usize, String)>,
    /// Nodes built so far, aliases expanded.
    nodes: usize,
    /// Set once a limit is passed: the rest of the events are ignored.
    stopped: bool,
}

/// A node's size in nodes (bounded by the depth limit, so the recursion is too).
fn size_of(node: &Node) -> usize {
    1 + match &node.kind {
        NodeKind::Scalar { .. } => 0,
        NodeKind::Seq(items) => items.iter().map(size_of).sum(),
        NodeKind::Map(entries) => entries.iter().map(|(k, v)| size_of(k) + size_of(v)).sum(),
    }
}

impl Builder {
    /// Stops building with an error at `line`.
    fn stop(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some((line, message));
        }
        self.stopped = true;
        self.stack.clear();
        self.pending_keys.clear();
        self.anchors.clear();
    }

    /// Counts `n` more nodes, stopping past [`MAX_YAML_NODES`].
    fn count(&mut self, line: usize, n: usize) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_YAML_NODES {
            self.stop(
                line,
                format!("the file has more than {MAX_YAML_NODES} nodes (aliases expanded)"),
            );
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = size_of(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some((parent, _)) = self.stack.last_mut() else {
            self.docs.push(node);
            return;
        };
        match &mut parent.kind {
            NodeKind::Seq(items) => items.push(node),
            NodeKind::Map(entries) => {
                let slot = self.pending_keys.last_mut();
                match slot {
                    Some(pending) => match pending.take() {
                        None => *pending = Some(node),
                        Some(key) => entries.push((key, node)),
                    },
                    None => self.error = Some((node.line, "malformed mapping".to_owned())),
                }
            }
            NodeKind::Scalar { .. } => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        if self.stopped {
            return;
        }
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_YAML_DEPTH
        {
            self.stop(
                line,
                format!("the file nests lists and mappings deeper than {MAX_YAML_DEPTH} levels"),
            );
            return;
        }
        if matches!(
            ev,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) && !self.count(line, 1)
        {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push_value(
                    Node {
                        kind: NodeKind::Scalar { text, quoted },
                        line,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((
                    Node {
                        kind: NodeKind::Seq(Vec::new()),
                        line,
                    },
                    Some(anchor),
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        line,
                    },
                    Some(anchor),
                ));
                self.pending_keys.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if matches!(ev, Event::MappingEnd) {
                    self.pending_keys.pop();
                }
                if let Some((node, anchor)) = self.stack.pop() {
                    self.push_value(node, anchor.unwrap_or(0));
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, size)| *size) {
                Some(size) => {
                    if self.count(line, size)
                        && let Some((node, _)) = self.anchors.get(&id).cloned()
                    {
                        self.push_value(Node { line, ..node }, 0);
                    }
                }
                None => self.error = Some((line, format!("unknown alias {id}"))),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses one YAML document. Errors carry the line.
pub fn parse(source: &str) -> Result<Node, (usize, String)> {
    if source.len() > MAX_YAML_BYTES {
        return Err((1, format!("the file is larger than {MAX_YAML_BYTES} bytes")));
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    let loaded = parser.load(&mut builder, true);
    // A limit passed stops the build; the parser's own error would only follow from it.
    if let Some(e) = builder.error {
        return Err(e);
    }
    loaded.map_err(|e| (e.marker().line(), e.info().to_owned()))?;
    match builder.docs.len() {
        0 => Err((1, "the file is empty".to_owned())),
        1 => Ok(builder.docs.remove(0)),
        _ => Err((
            builder.docs[1].line,
            "a scenario file holds one YAML document".to_owned(),
        )),
    }
}

impl Node {
    /// A short name of the node's type, for errors.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The scalar text, or `None`.
    #[must_use]
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this is a plain `null`, `~` or empty scalar.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept() -> Result<(), (usize, String)> {
        let doc = parse("a: 1\nb:\n  - x\n  - {c: d}\n")?;
        let NodeKind::Map(entries) = &doc.kind else {
            return Err((0, "not a map".into()));
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0.line, 2);
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            return Err((0, "not a seq".into()));
        };
        assert_eq!(items[1].line, 4);
        Ok(())
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("a: 1\nb: [unclosed\n").err();
        assert!(err.is_some_and(|(line, _)| line >= 2));
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn deep_files_and_alias_bombs_are_errors() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&deep).map(|_| ());
        assert!(err.is_err(), "{err:?}");
        let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        let err = parse(&deep).map(|_| ());
        assert!(
            err.as_ref()
                .is_err_and(|(_, m)| m.contains("deeper than 64")),
            "{err:?}"
        );
        let ok = format!("{}1{}", "[".repeat(64), "]".repeat(64));
        assert!(parse(&ok).is_ok());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            let prev = ["a", "b", "c", "d", "e", "f", "g"][i];
            bomb.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&bomb).is_err_and(|(_, m)| m.contains("nodes")));
    }
}
