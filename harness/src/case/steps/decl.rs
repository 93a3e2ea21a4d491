//! How a step reads: a mapping of `expect` and exactly one operation key, the key naming the
//! [`Op`] variant and its value the variant's arguments. serde's externally tagged enums
//! want the variant as the only key, so the operation is read through [`Keyed`], which
//! presents the key already read and the value still to read as that enum.

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, VariantAccess, Visitor},
    ser::SerializeMap,
};

use super::{Kind, Op};

/// A step as written: the operation and its (not yet checked) expectation.
#[derive(Debug, Clone)]
pub struct StepDecl {
    /// The operation's key as written, for messages about it.
    pub name: &'static str,
    pub op: Op,
    pub expect: serde_yaml::Value,
    /// `within: 2s`: ask again until the expectation holds, for this long at most.
    pub within: Option<std::time::Duration>,
}

impl<'de> Deserialize<'de> for StepDecl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = StepDecl;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a step: one operation ({}) and `expect`",
            Op::names().join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepDecl, A::Error> {
        let mut op: Option<Op> = None;
        let mut expect = None;
        let mut within = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "expect" {
                expect = Some(map.next_value()?);
                continue;
            }
            if key == "within" {
                let text: String = map.next_value()?;
                let duration = humantime::parse_duration(&text).map_err(|_| {
                    de::Error::custom(format!(
                        "`within` is a duration such as 500ms or 2s, not {text:?}"
                    ))
                })?;
                within = Some(duration);
                continue;
            }
            if let Some(first) = &op {
                let first = first.name();
                return Err(de::Error::custom(format!(
                    "a step does one thing: `{first}` and `{key}` need two steps"
                )));
            }
            op = Some(map.next_value_seed(OpNamed(key))?);
        }
        let Some(op) = op else {
            return Err(de::Error::custom(format!(
                "a step needs an operation: {}",
                Op::names().join(", ")
            )));
        };
        let name = op.name();
        // A repeat stands for its steps, which carry the expectations.
        let expect = match (expect, &op) {
            (None, Op::Repeat(_)) => Some(serde_yaml::Value::Null),
            (expect, _) => expect,
        };
        let Some(expect) = expect else {
            return Err(de::Error::custom(format!(
                "every step says what it expects: add `expect:` to this `{name}` step"
            )));
        };
        Ok(StepDecl {
            name,
            op,
            expect,
            within,
        })
    }
}

/// Written back as it was read (the plan the guest reads is JSON of validated cases).
impl Serialize for StepDecl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // JSON, not YAML: serde_yaml writes an enum as a tagged value, not a mapping.
        let op = serde_json::to_value(&self.op).map_err(serde::ser::Error::custom)?;
        let serde_json::Value::Object(entries) = op else {
            return Err(serde::ser::Error::custom(
                "an operation serialises as one entry",
            ));
        };
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        if !self.expect.is_null() {
            map.serialize_entry("expect", &self.expect)?;
        }
        if let Some(within) = self.within {
            map.serialize_entry("within", &humantime::format_duration(within).to_string())?;
        }
        map.end()
    }
}

/// An operation written alone, as a mapping of its key to its arguments (a thread's step,
/// which has no `expect` of its own).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct BareOp(pub Op);

impl<'de> Deserialize<'de> for BareOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BareOpVisitor)
    }
}

struct BareOpVisitor;

impl<'de> Visitor<'de> for BareOpVisitor {
    type Value = BareOp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "one operation ({})", Op::names().join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BareOp, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "an operation is needed here: {}",
                Op::names().join(", ")
            )));
        };
        if key == "expect" {
            return Err(de::Error::custom(
                "a thread's steps expect nothing one by one: the threads step expects `counts`",
            ));
        }
        let op = map.next_value_seed(OpNamed(key))?;
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a thread's step is one operation alone, not `{}` and `{extra}`{}",
                op.name(),
                if extra == "expect" {
                    ": the threads step expects `counts`"
                } else {
                    ""
                }
            )));
        }
        Ok(BareOp(op))
    }
}

/// Reads an operation's value as the [`Op`] variant its key names.
struct OpNamed(String);

impl<'de> DeserializeSeed<'de> for OpNamed {
    type Value = Op;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<Op, D::Error> {
        let Some(kind) = Kind::named(&self.0) else {
            let names = Op::names();
            let hint = match crate::diagnostic::suggest(&self.0, names.iter().copied()) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => format!("; operations: {}", names.join(", ")),
            };
            return Err(de::Error::custom(format!(
                "unknown step key `{}`{hint}",
                self.0
            )));
        };
        Op::read(kind, self.0, value)
    }
}

/// `value` as the content of an enum whose variant is named `key`, which serde's derived
/// enums read: the operation of a concern, read with its key already known.
pub(super) fn keyed<'de, D: Deserializer<'de>>(
    key: String,
    value: D,
) -> impl Deserializer<'de, Error = D::Error> {
    Keyed { key, value }
}

/// An enum whose variant name was read already (`key`) and whose content is `value`.
struct Keyed<D> {
    key: String,
    value: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Keyed<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Keyed<D> {
    type Error = D::Error;
    type Variant = Content<D>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Content<D>), D::Error> {
        let key: de::value::StringDeserializer<D::Error> = self.key.into_deserializer();
        Ok((seed.deserialize(key)?, Content(self.value)))
    }
}

/// The content of a variant is the value as it stands in the YAML.
struct Content<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for Content<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(self.0).map(|_| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct("", fields, visitor)
    }
}
