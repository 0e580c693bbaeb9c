//! A small, bounded decoder of Universal Binary JSON (UBJSON, <https://ubjson.org>) into
//! [`serde_json::Value`], for XGBoost's `.ubj` model files.
//!
//! It reads every value type of UBJSON draft 12 except high-precision numbers (`H`), and the
//! optimized containers (`#` count, `$` element type and count) that XGBoost writes for its
//! arrays. Input is untrusted: a count larger than the bytes left is refused before anything is
//! allocated for it, nesting is limited to [`MAX_DEPTH`], and every error names its byte offset.
//! Numbers become JSON numbers (integers stay integers); a non-finite float, which JSON cannot
//! hold, becomes `null`.

use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted.
pub(crate) const MAX_DEPTH: usize = 128;

/// Whether `bytes` look like a UBJSON object rather than JSON text: a `{` followed directly by
/// the type marker of a key's length (`i`, `U`, `I`, `l`, `L`) or of an optimized container
/// (`$`, `#`). JSON text has whitespace, `"` or `}` there; an empty object `{}` is read as JSON.
pub(crate) fn looks_like_ubjson(bytes: &[u8]) -> bool {
    matches!(bytes, [b'{', b'i' | b'U' | b'I' | b'l' | b'L' | b'$' | b'#', ..])
}

/// Decodes one UBJSON value that fills `bytes` exactly; the error says what is wrong and at
/// which byte offset.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { bytes, pos: 0 };
    let marker = r.marker()?;
    let value = r.value(marker, 0)?;
    // Trailing no-ops are allowed; anything else after the value is not.
    while r.pos < bytes.len() && bytes[r.pos] == b'N' {
        r.pos += 1;
    }
    if r.pos != bytes.len() {
        return Err(format!("offset {}: {} bytes after the end of the value", r.pos, bytes.len() - r.pos));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "offset {}: {what} needs {n} bytes, {} left (truncated file?)",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// The next type marker, skipping no-op markers (`N`).
    fn marker(&mut self) -> Result<u8, String> {
        loop {
            let [m] = self.array::<1>("a type marker")?;
            if m != b'N' {
                return Ok(m);
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// An integer value of type `marker` (a length or count), as i64.
    fn integer(&mut self, marker: u8) -> Result<Option<i64>, String> {
        Ok(Some(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array("an int8")?)),
            b'U' => i64::from(self.array::<1>("a uint8")?[0]),
            b'I' => i64::from(i16::from_be_bytes(self.array("an int16")?)),
            b'l' => i64::from(i32::from_be_bytes(self.array("an int32")?)),
            b'L' => i64::from_be_bytes(self.array("an int64")?),
            _ => return Ok(None),
        }))
    }

    /// A length or count: an integer marker and value, non-negative and at most `limit`.
    fn count(&mut self, what: &str, limit: usize) -> Result<usize, String> {
        let at = self.pos;
        let marker = self.marker()?;
        let n = self.integer(marker)?.ok_or_else(|| {
            format!("offset {at}: the {what} has type marker {} where an integer was expected", show(marker))
        })?;
        let n = usize::try_from(n).map_err(|_| format!("offset {at}: negative {what} {n}"))?;
        if n > limit {
            return Err(format!(
                "offset {at}: {what} {n} does not fit in the {} bytes left in the file",
                self.remaining()
            ));
        }
        Ok(n)
    }

    /// A string's length and UTF-8 bytes (without the `S` marker).
    fn string(&mut self) -> Result<String, String> {
        let n = self.count("string length", self.remaining())?;
        let at = self.pos;
        let raw = self.take(n, "a string")?;
        String::from_utf8(raw.to_vec()).map_err(|e| format!("offset {at}: string is not UTF-8: {e}"))
    }

    /// Bytes per element of a typed container of element type `t` (0 for types with no payload).
    fn element_size(t: u8) -> Option<usize> {
        Some(match t {
            b'Z' | b'T' | b'F' => 0,
            b'i' | b'U' | b'C' => 1,
            b'I' => 2,
            b'l' | b'd' => 4,
            b'L' | b'D' => 8,
            b'S' | b'H' | b'[' | b'{' => 1,
            _ => return None,
        })
    }

    /// The optional `$type` and `#count` header of a container.
    fn container_header(&mut self, what: &str) -> Result<(Option<u8>, Option<usize>), String> {
        let at = self.pos;
        let typed = if self.peek() == Some(b'$') {
            self.pos += 1;
            let t = self.array::<1>("an element type")?[0];
            if Self::element_size(t).is_none() || t == b'N' {
                return Err(format!("offset {at}: unknown element type {} of a typed {what}", show(t)));
            }
            Some(t)
        } else {
            None
        };
        // A typed container must have a count; reading its marker names a truncated file.
        let counted = match typed {
            Some(_) => self.array::<1>("the count marker of a typed container")?[0] == b'#',
            None if self.peek() == Some(b'#') => {
                self.pos += 1;
                true
            }
            None => false,
        };
        let count = if counted {
            // Each element takes at least one byte, except in typed containers of payload-free
            // types; those are bounded by the bytes left too, so no count allocates more than
            // a constant times the input size.
            let size = typed.and_then(Self::element_size).unwrap_or(1).max(1);
            Some(self.count(&format!("{what} count"), self.remaining() / size)?)
        } else {
            None
        };
        if typed.is_some() && count.is_none() {
            return Err(format!("offset {at}: a typed {what} has no count (`$` must be followed by `#`)"));
        }
        Ok((typed, count))
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        let at = self.pos.saturating_sub(1);
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.integer(marker)?.unwrap_or_default()),
            b'd' => float(f64::from(f32::from_be_bytes(self.array("a float32")?))),
            b'D' => float(f64::from_be_bytes(self.array("a float64")?)),
            b'C' => Value::String(char::from(self.array::<1>("a char")?[0]).to_string()),
            b'S' => Value::String(self.string()?),
            b'H' => return Err(format!("offset {at}: high-precision numbers (`H`) are not supported")),
            b'[' | b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(format!("offset {at}: nested deeper than {MAX_DEPTH} arrays and objects"));
                }
                if marker == b'[' {
                    self.list(depth + 1)?
                } else {
                    self.object(depth + 1)?
                }
            }
            m => return Err(format!("offset {at}: unknown type marker {}", show(m))),
        })
    }

    fn element(&mut self, typed: Option<u8>, depth: usize) -> Result<Value, String> {
        let marker = match typed {
            Some(t) => t,
            None => self.marker()?,
        };
        self.value(marker, depth)
    }

    fn list(&mut self, depth: usize) -> Result<Value, String> {
        let (typed, count) = self.container_header("array")?;
        let mut items = Vec::new();
        match count {
            Some(n) => {
                items.reserve_exact(n);
                for _ in 0..n {
                    items.push(self.element(typed, depth)?);
                }
            }
            None => loop {
                let marker = self.marker()?;
                if marker == b']' {
                    break;
                }
                items.push(self.value(marker, depth)?);
            },
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let (typed, count) = self.container_header("object")?;
        let mut map = Map::new();
        match count {
            Some(n) => {
                for _ in 0..n {
                    let key = self.string()?;
                    let value = self.element(typed, depth)?;
                    map.insert(key, value);
                }
            }
            None => loop {
                while self.peek() == Some(b'N') {
                    self.pos += 1;
                }
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    break;
                }
                let key = self.string()?;
                let marker = self.marker()?;
                let value = self.value(marker, depth)?;
                map.insert(key, value);
            },
        }
        Ok(Value::Object(map))
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// A marker byte for a message: the character when printable, else its hex code.
fn show(m: u8) -> String {
    if m.is_ascii_graphic() {
        format!("`{}`", char::from(m))
    } else {
        format!("0x{m:02x}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_scalars_and_containers() {
        let mut b = b"{L\x00\x00\x00\x00\x00\x00\x00\x01aSU\x02hi".to_vec();
        b.extend(b"U\x01b[$d#U\x02\x3f\x80\x00\x00\xc0\x00\x00\x00");
        b.extend(b"i\x01c[i\xffI\x01\x00TFZ]}");
        assert_eq!(
            decode(&b).unwrap(),
            json!({"a": "hi", "b": [1.0, -2.0], "c": [-1, 256, true, false, null]})
        );
        assert!(looks_like_ubjson(&b));
        assert!(!looks_like_ubjson(b"{\"a\": 1}") && !looks_like_ubjson(b"{}"));
    }

    #[test]
    fn refuses_counts_beyond_the_input_before_allocating() {
        let e = decode(b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(e.contains("array count") && e.contains("does not fit in the 0 bytes left"), "{e}");
        let e = decode(b"[#l\x00\x00\x00\x09TT]").unwrap_err();
        assert!(e.contains("array count 9"), "{e}");
        assert!(decode(b"[#i\xfe").unwrap_err().contains("negative"));
    }

    #[test]
    fn names_truncation_depth_and_bad_markers() {
        assert!(decode(b"[d\x3f\x80").unwrap_err().contains("truncated"));
        assert!(decode(b"[$d").unwrap_err().contains("truncated"));
        assert!(decode(b"[$dT").unwrap_err().contains("has no count"));
        let deep = vec![b'['; MAX_DEPTH + 2];
        assert!(decode(&deep).unwrap_err().contains("nested deeper"));
        assert!(decode(b"[Q]").unwrap_err().contains("unknown type marker `Q`"));
        assert!(decode(b"TT").unwrap_err().contains("after the end"));
        assert!(decode(b"SU\x01\xff").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(
            decode(b"[d\x7f\xc0\x00\x00D\x7f\xf0\x00\x00\x00\x00\x00\x00]").unwrap(),
            json!([null, null])
        );
    }
}
