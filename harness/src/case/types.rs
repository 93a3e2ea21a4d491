//! C types of map keys and values: layout, encoding of case values into bytes, and decoding
//! of the bytes a lookup returns into JSON for comparison and reports.

use std::num::IntErrorKind;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::limits::MAX_TYPE_SIZE;

/// A key or value type as a case declares it: a name (`u32`, `int`, `bpf_spin_lock`,
/// `u8[64]`) or an ordered struct of named fields.
#[derive(schemars::JsonSchema, Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TypeExpr {
    Named(String),
    Struct(IndexMap<String, TypeExpr>),
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    Int {
        bytes: u32,
        signed: bool,
    },
    /// `struct bpf_spin_lock { __u32 val; }`: the kernel finds it by name in the value's BTF.
    SpinLock,
    Array {
        elem: Box<Type>,
        len: u32,
    },
    Struct {
        fields: Vec<(String, Type)>,
    },
}

/// Scalar type names, with the C spelling their BTF carries.
const SCALARS: &[(&str, u32, bool, &str)] = &[
    ("int", 4, true, "int"),
    ("u8", 1, false, "unsigned char"),
    ("u16", 2, false, "unsigned short"),
    ("u32", 4, false, "unsigned int"),
    ("u64", 8, false, "unsigned long long"),
    ("i8", 1, true, "signed char"),
    ("i16", 2, true, "short"),
    ("i32", 4, true, "int"),
    ("i64", 8, true, "long long"),
];

pub fn type_names() -> impl Iterator<Item = &'static str> {
    SCALARS.iter().map(|(n, ..)| *n).chain(["bpf_spin_lock"])
}

/// Why a value does not fit its type; `path` is relative to the value (`count`, `data[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMismatch {
    pub path: Vec<String>,
    pub problem: String,
}

impl ValueMismatch {
    fn at(problem: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            problem: problem.into(),
        }
    }

    fn within(mut self, segment: String) -> Self {
        self.path.insert(0, segment);
        self
    }
}

impl Type {
    /// Resolves a declared type; the error names the unknown type name, or the type that is
    /// larger than [`MAX_TYPE_SIZE`].
    pub fn from_expr(expr: &TypeExpr) -> Result<Self, ValueMismatch> {
        let ty = match expr {
            TypeExpr::Named(name) => Self::from_name(name.trim())?,
            TypeExpr::Struct(fields) => {
                if fields.is_empty() {
                    return Err(ValueMismatch::at("a struct needs at least one field"));
                }
                let fields = fields
                    .iter()
                    .map(|(name, expr)| {
                        Self::from_expr(expr)
                            .map(|ty| (name.clone(), ty))
                            .map_err(|e| e.within(name.clone()))
                    })
                    .collect::<Result<_, _>>()?;
                Self::Struct { fields }
            }
        };
        match ty.checked_size() {
            Some(size) if size <= MAX_TYPE_SIZE => Ok(ty),
            size => Err(too_large(size)),
        }
    }

    fn from_name(name: &str) -> Result<Self, ValueMismatch> {
        if let Some((elem, rest)) = name.split_once('[') {
            let len = match rest.strip_suffix(']').map(|n| n.trim().parse::<u32>()) {
                Some(Ok(len)) if len > 0 => len,
                Some(Err(e)) if *e.kind() == IntErrorKind::PosOverflow => {
                    return Err(too_large(None));
                }
                _ => {
                    return Err(ValueMismatch::at(format!(
                        "bad array type {name:?}: write it as ELEMENT[N], e.g. u8[64]"
                    )));
                }
            };
            let elem = Self::from_name(elem.trim())?;
            return Ok(Self::Array {
                elem: Box::new(elem),
                len,
            });
        }
        if name == "bpf_spin_lock" {
            return Ok(Self::SpinLock);
        }
        SCALARS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, bytes, signed, _)| Self::Int {
                bytes: *bytes,
                signed: *signed,
            })
            .ok_or_else(|| {
                let hint = crate::diagnostic::did_you_mean(name, type_names());
                ValueMismatch::at(format!(
                    "unknown type `{name}` (known: {}, ELEMENT[N], or a struct of fields){hint}",
                    type_names().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// The size under C layout rules. Types come from [`Type::from_expr`], which bounds them
    /// to [`MAX_TYPE_SIZE`], or from the harness itself, so the size always fits.
    pub fn size(&self) -> u32 {
        self.checked_size()
            .expect("types are bounded by MAX_TYPE_SIZE when declared")
    }

    /// The size, or `None` where it overflows u32.
    fn checked_size(&self) -> Option<u32> {
        match self {
            Self::Int { bytes, .. } => Some(*bytes),
            Self::SpinLock => Some(4),
            Self::Array { elem, len } => elem.checked_size()?.checked_mul(*len),
            Self::Struct { fields } => struct_layout(fields)?
                .1
                .checked_next_multiple_of(self.align()),
        }
    }

    pub fn align(&self) -> u32 {
        match self {
            Self::Int { bytes, .. } => *bytes,
            Self::SpinLock => 4,
            Self::Array { elem, .. } => elem.align(),
            Self::Struct { fields } => fields.iter().map(|(_, t)| t.align()).max().unwrap_or(1),
        }
    }

    /// Byte offsets of a struct's fields under C layout rules; empty for other types.
    pub fn field_offsets(&self) -> impl Iterator<Item = u32> + '_ {
        let offsets = match self {
            Self::Struct { fields } => {
                struct_layout(fields)
                    .expect("types are bounded by MAX_TYPE_SIZE when declared")
                    .0
            }
            _ => Vec::new(),
        };
        offsets.into_iter()
    }

    /// The C name of a scalar for BTF, e.g. `unsigned int`.
    pub fn c_name(bytes: u32, signed: bool) -> &'static str {
        SCALARS
            .iter()
            .find(|(_, b, s, _)| *b == bytes && *s == signed)
            .map_or("int", |(.., c)| c)
    }

    /// Encodes a case's value (YAML) into the bytes the kernel expects. Struct fields that
    /// are left out are zero; an integer given for an array fills every element.
    pub fn encode(&self, value: &serde_yaml::Value) -> Result<Vec<u8>, ValueMismatch> {
        let mut out = vec![0u8; self.size() as usize];
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    fn encode_into(&self, value: &serde_yaml::Value, out: &mut [u8]) -> Result<(), ValueMismatch> {
        use serde_yaml::Value as Y;
        match (self, value) {
            (Self::Int { bytes, signed }, _) => {
                let raw = int_from_yaml(value, *bytes, *signed)?;
                out.copy_from_slice(&raw.to_le_bytes()[..*bytes as usize]);
                Ok(())
            }
            (Self::SpinLock, _) => Self::Int {
                bytes: 4,
                signed: false,
            }
            .encode_into(value, out),
            (Self::Array { elem, len }, Y::Sequence(items)) => {
                if items.len() != *len as usize {
                    return Err(ValueMismatch::at(format!(
                        "expected {len} elements, found {}",
                        items.len()
                    )));
                }
                let step = elem.size() as usize;
                for (i, (item, chunk)) in items.iter().zip(out.chunks_mut(step)).enumerate() {
                    elem.encode_into(item, chunk)
                        .map_err(|e| e.within(format!("[{i}]")))?;
                }
                Ok(())
            }
            (Self::Array { elem, .. }, Y::Number(_)) => {
                let step = elem.size() as usize;
                out.chunks_mut(step)
                    .try_for_each(|chunk| elem.encode_into(value, chunk))
            }
            (Self::Struct { fields }, Y::Mapping(given)) => {
                reject_unknown_fields(fields, given)?;
                for (offset, (name, ty)) in self.field_offsets().zip(fields) {
                    if let Some(v) = given.get(name.as_str()) {
                        let range = offset as usize..(offset + ty.size()) as usize;
                        ty.encode_into(v, &mut out[range])
                            .map_err(|e| e.within(name.clone()))?;
                    }
                }
                Ok(())
            }
            (Self::Array { len, .. }, _) => Err(ValueMismatch::at(format!(
                "expected a list of {len} elements or one integer to fill them"
            ))),
            (Self::Struct { .. }, _) => Err(ValueMismatch::at(
                "expected a mapping of field names to values",
            )),
        }
    }

    /// Decodes bytes (as long as `size()`) into JSON: integers, arrays and objects.
    pub fn decode(&self, bytes: &[u8]) -> Json {
        match self {
            Self::Int { bytes: n, signed } => {
                let mut raw = [0u8; 8];
                raw[..*n as usize].copy_from_slice(&bytes[..*n as usize]);
                let unsigned = u64::from_le_bytes(raw);
                if *signed {
                    let shift = 64 - 8 * n;
                    Json::from(((unsigned << shift) as i64) >> shift)
                } else {
                    Json::from(unsigned)
                }
            }
            Self::SpinLock => Self::Int {
                bytes: 4,
                signed: false,
            }
            .decode(bytes),
            Self::Array { elem, .. } => Json::Array(
                bytes
                    .chunks(elem.size() as usize)
                    .map(|chunk| elem.decode(chunk))
                    .collect(),
            ),
            Self::Struct { fields } => Json::Object(
                self.field_offsets()
                    .zip(fields)
                    .map(|(offset, (name, ty))| {
                        let range = offset as usize..(offset + ty.size()) as usize;
                        (name.clone(), ty.decode(&bytes[range]))
                    })
                    .collect(),
            ),
        }
    }

    /// Checks an expected value (YAML) against the type and turns it into JSON comparable
    /// with `decode`'s output. `any` matches whatever the kernel returns for that part; a
    /// struct must list every field (use `any` for the ones that do not matter), so that
    /// an expectation never silently ignores part of the value.
    pub fn expected(&self, value: &serde_yaml::Value) -> Result<Json, ValueMismatch> {
        use serde_yaml::Value as Y;
        if value.as_str() == Some(ANY) {
            return Ok(Json::String(ANY.into()));
        }
        match (self, value) {
            (Self::Int { .. }, Y::String(text)) => Comparison::parse(text)
                .map(|c| Json::String(c.to_string()))
                .ok_or_else(|| {
                    ValueMismatch::at(format!(
                        "expected an integer, `any`, or a comparison such as \"> 0\" or \">= 3\", found {text:?}"
                    ))
                }),
            (Self::Int { bytes, signed }, _) => {
                let raw = int_from_yaml(value, *bytes, *signed)?;
                Ok(self.decode(&raw.to_le_bytes()))
            }
            (Self::SpinLock, _) => Self::Int {
                bytes: 4,
                signed: false,
            }
            .expected(value),
            (Self::Array { elem, len }, Y::Sequence(items)) if items.len() == *len as usize => {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| elem.expected(item).map_err(|e| e.within(format!("[{i}]"))))
                    .collect::<Result<_, _>>()
                    .map(Json::Array)
            }
            (Self::Array { elem, len }, Y::Number(_)) => {
                let one = elem.expected(value)?;
                Ok(Json::Array(vec![one; *len as usize]))
            }
            (Self::Struct { fields }, Y::Mapping(given)) => {
                reject_unknown_fields(fields, given)?;
                let missing: Vec<&str> = fields
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .filter(|n| !given.contains_key(*n))
                    .collect();
                if !missing.is_empty() {
                    return Err(ValueMismatch::at(format!(
                        "expected value lists no `{}`: give every field (`any` where it does not matter)",
                        missing.join("`, `")
                    )));
                }
                fields
                    .iter()
                    .map(|(name, ty)| {
                        ty.expected(&given[name.as_str()])
                            .map(|v| (name.clone(), v))
                            .map_err(|e| e.within(name.clone()))
                    })
                    .collect::<Result<_, _>>()
                    .map(Json::Object)
            }
            _ => self.encode(value).map(|_| Json::Null),
        }
    }
}

/// A type beyond [`MAX_TYPE_SIZE`]; `None`: beyond u32 too.
fn too_large(size: Option<u32>) -> ValueMismatch {
    ValueMismatch::at(format!(
        "the type is {}, more than the {MAX_TYPE_SIZE} bytes (1 MiB) a case may declare \
         (the kernel's limit for sk storage values is just under 64 KiB); to pass a larger \
         size to BPF_MAP_CREATE, set `value_size`",
        size.map_or_else(|| "over 4 GiB".to_string(), |s| format!("{s} bytes"))
    ))
}

/// The offset of each field and where the last one ends (before the struct's tail padding);
/// `None` where an offset overflows u32.
fn struct_layout(fields: &[(String, Type)]) -> Option<(Vec<u32>, u32)> {
    let mut offsets = Vec::with_capacity(fields.len());
    let mut end = 0u32;
    for (_, ty) in fields {
        let offset = end.checked_next_multiple_of(ty.align())?;
        offsets.push(offset);
        end = offset.checked_add(ty.checked_size()?)?;
    }
    Some((offsets, end))
}

fn reject_unknown_fields(
    fields: &[(String, Type)],
    given: &serde_yaml::Mapping,
) -> Result<(), ValueMismatch> {
    // A set, so that a value of a struct of many fields is checked in linear time.
    let names: std::collections::HashSet<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    for key in given.keys() {
        let key = key.as_str().unwrap_or("?");
        if !names.contains(key) {
            let hint = crate::diagnostic::did_you_mean(key, fields.iter().map(|(n, _)| n.as_str()));
            return Err(ValueMismatch::at(format!(
                "the value type has no field `{key}`{hint}"
            )));
        }
    }
    Ok(())
}

/// A JSON value as the views print it, a long list summarised: an 8120-byte value is
/// `[8120 × 1]` when its elements are all alike, else its first elements and how many
/// more (`[0, 1, 2, 3, 4, 5, 6, 7, … 8112 more]`). results.json keeps every element.
pub struct Brief<'a>(pub &'a serde_json::Value);

impl Brief<'_> {
    /// Lists up to this long print in full.
    const FULL: usize = 16;
    /// How many elements of a longer, mixed list are printed.
    const HEAD: usize = 8;
}

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use serde_json::Value as Json;
        match self.0 {
            Json::Array(items) if items.len() > Self::FULL => {
                if items.iter().all(|item| *item == items[0]) {
                    return write!(f, "[{} × {}]", items.len(), Brief(&items[0]));
                }
                write!(f, "[")?;
                for item in &items[..Self::HEAD] {
                    write!(f, "{}, ", Brief(item))?;
                }
                write!(f, "… {} more]", items.len() - Self::HEAD)
            }
            Json::Array(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    write!(f, "{comma}{}", Brief(item))?;
                }
                write!(f, "]")
            }
            Json::Object(fields) => {
                write!(f, "{{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    write!(f, "{comma}{}:{}", Json::from(name.as_str()), Brief(value))?;
                }
                write!(f, "}}")
            }
            other => write!(f, "{other}"),
        }
    }
}

/// The wildcard in expected values.
pub const ANY: &str = "any";

/// A comparison an expected integer may be instead of a number: `> 0`, `>= 3`, `< 10`,
/// `<= 10`, `!= 0`; for counts and sizes whose exact value is not the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    op: &'static str,
    operand: i128,
}

impl Comparison {
    const OPERATORS: [&'static str; 5] = [">=", "<=", "!=", ">", "<"];

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let op = Self::OPERATORS
            .into_iter()
            .find(|op| text.starts_with(op))?;
        let operand = text[op.len()..].trim().parse().ok()?;
        Some(Self { op, operand })
    }

    pub fn holds(self, actual: i128) -> bool {
        match self.op {
            ">=" => actual >= self.operand,
            "<=" => actual <= self.operand,
            "!=" => actual != self.operand,
            ">" => actual > self.operand,
            _ => actual < self.operand,
        }
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op, self.operand)
    }
}

/// Whether an actual decoded value satisfies an expected one (with `any` wildcards and
/// comparisons).
pub fn value_matches(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::String(s), _) if s == ANY => true,
        (Json::String(s), Json::Number(n)) if Comparison::parse(s).is_some() => {
            let actual = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
            Comparison::parse(s)
                .zip(actual)
                .is_some_and(|(c, actual)| c.holds(actual))
        }
        (Json::Array(e), Json::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| value_matches(e, a))
        }
        (Json::Object(e), Json::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, e)| a.get(k).is_some_and(|a| value_matches(e, a)))
        }
        _ => expected == actual,
    }
}

fn int_from_yaml(
    value: &serde_yaml::Value,
    bytes: u32,
    signed: bool,
) -> Result<u64, ValueMismatch> {
    let bits = 8 * bytes;
    let fits = |n: i128| {
        if signed {
            let half = 1i128 << (bits - 1);
            (-half..half).contains(&n)
        } else {
            (0..(1i128 << bits)).contains(&n)
        }
    };
    let n: i128 = match value {
        serde_yaml::Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| ValueMismatch::at(format!("expected an integer, found {n}")))?,
        other => {
            return Err(ValueMismatch::at(format!(
                "expected an integer, found {}",
                describe(other)
            )));
        }
    };
    if !fits(n) {
        let kind = if signed { "signed" } else { "unsigned" };
        return Err(ValueMismatch::at(format!(
            "{n} does not fit in a {bits}-bit {kind} integer"
        )));
    }
    Ok(n as u64)
}

fn describe(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Null => "nothing".into(),
        serde_yaml::Value::Bool(b) => format!("{b}"),
        serde_yaml::Value::String(s) => format!("{s:?}"),
        serde_yaml::Value::Sequence(_) => "a list".into(),
        serde_yaml::Value::Mapping(_) => "a mapping".into(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Tagged(t) => format!("a tagged value {}", t.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(yaml: &str) -> Type {
        Type::from_expr(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }
    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn struct_layout_follows_c_rules() {
        let t = ty("{ lock: bpf_spin_lock, small: u8, big: u64 }");
        assert_eq!(t.field_offsets().collect::<Vec<_>>(), vec![0, 4, 8]);
        assert_eq!(t.size(), 16);
        assert_eq!(ty("u8[3]").size(), 3);
        assert_eq!(ty("{ a: \"u8[3]\", b: u16 }").size(), 6);
    }

    #[test]
    fn sizes_are_bounded_and_never_overflow() {
        let problem = |yaml: &str| {
            Type::from_expr(&serde_yaml::from_str(yaml).unwrap())
                .unwrap_err()
                .problem
        };
        assert_eq!(ty("\"u8[1048576]\"").size(), MAX_TYPE_SIZE);
        assert!(problem("\"u8[1048577]\"").starts_with("the type is 1048577 bytes, more than"));
        assert!(problem("\"u8[4294967295]\"").starts_with("the type is 4294967295 bytes"));
        // 8 * 2^29 = 2^32 bytes, and more elements than u32 holds: both beyond u32.
        assert!(problem("\"u64[536870912]\"").starts_with("the type is over 4 GiB"));
        assert!(problem("\"u8[99999999999]\"").starts_with("the type is over 4 GiB"));
        // Fields each within the limit, together beyond it; the innermost such struct is named.
        assert!(problem("{ a: \"u8[1048576]\", b: u8 }").starts_with("the type is 1048577 bytes"));
        let wide = (0..5)
            .map(|i| format!("f{i}: \"u8[1048576]\""))
            .collect::<Vec<_>>()
            .join(", ");
        let nested = format!("{{ s: {{ {wide} }} }}");
        let err = Type::from_expr(&serde_yaml::from_str(&nested).unwrap()).unwrap_err();
        assert_eq!(err.path, vec!["s"], "the innermost struct too large");
        assert!(
            err.problem.starts_with("the type is 5242880 bytes"),
            "{}",
            err.problem
        );
        // 4,100 fields of 1 MiB: the offsets pass u32 themselves.
        let huge = (0..4100)
            .map(|i| format!("f{i}: \"u8[1048576]\""))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(problem(&format!("{{ {huge} }}")).starts_with("the type is over 4 GiB"));
    }

    #[test]
    fn values_encode_and_decode_back() {
        let t = ty("{ count: u32, delta: i16, tag: \"u8[2]\" }");
        let bytes = t
            .encode(&yaml("{ count: 7, delta: -2, tag: [1, 2] }"))
            .unwrap();
        assert_eq!(bytes, vec![7, 0, 0, 0, 0xfe, 0xff, 1, 2]);
        assert_eq!(
            t.decode(&bytes),
            serde_json::json!({ "count": 7, "delta": -2, "tag": [1, 2] })
        );
        assert_eq!(ty("u8[4]").encode(&yaml("9")).unwrap(), vec![9; 4]);
    }

    #[test]
    fn bad_values_name_the_field() {
        let t = ty("{ count: u32 }");
        let err = t.encode(&yaml("{ cuont: 1 }")).unwrap_err();
        assert_eq!(
            err.problem,
            "the value type has no field `cuont`; did you mean `count`?"
        );
        let err = t.encode(&yaml("{ count: -1 }")).unwrap_err();
        assert_eq!(err.path, vec!["count"]);
        assert_eq!(err.problem, "-1 does not fit in a 32-bit unsigned integer");
        let err = Type::from_expr(&TypeExpr::Named("u33".into())).unwrap_err();
        assert!(
            err.problem.contains("did you mean `u32`?"),
            "{}",
            err.problem
        );
    }

    #[test]
    fn comparisons_hold_or_not() {
        let t = ty("{ count: u32 }");
        let e = t.expected(&yaml("{ count: \">= 2\" }")).unwrap();
        assert!(value_matches(&e, &serde_json::json!({ "count": 2 })));
        assert!(!value_matches(&e, &serde_json::json!({ "count": 1 })));
        let e = ty("i64").expected(&yaml("\"!= -1\"")).unwrap();
        assert!(value_matches(&e, &serde_json::json!(0)));
        assert!(!value_matches(&e, &serde_json::json!(-1)));
        let err = ty("u32").expected(&yaml("\"about 3\"")).unwrap_err();
        assert!(err.problem.contains("comparison"), "{}", err.problem);
    }

    #[test]
    fn expectations_list_every_field_and_allow_any() {
        let t = ty("{ lock: bpf_spin_lock, count: u32 }");
        let err = t.expected(&yaml("{ count: 1 }")).unwrap_err();
        assert!(err.problem.contains("lists no `lock`"), "{}", err.problem);
        let e = t.expected(&yaml("{ lock: any, count: 1 }")).unwrap();
        assert!(value_matches(
            &e,
            &serde_json::json!({ "lock": 5, "count": 1 })
        ));
        assert!(!value_matches(
            &e,
            &serde_json::json!({ "lock": 5, "count": 2 })
        ));
    }
}
