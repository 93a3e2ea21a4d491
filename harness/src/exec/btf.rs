//! Encodes the BTF that describes a map's key and value types.
//!
//! The kernel refuses SK_STORAGE maps without BTF. aya-obj can parse BTF but keeps its
//! struct and array constructors private, so this writes the few type kinds a case can
//! declare (int, array, struct, `struct bpf_spin_lock`) directly, per
//! Documentation/bpf/btf.rst.

use crate::case::Type;

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const INT_SIGNED: u32 = 1 << 24;

/// A BTF blob with the ids of the key and value types in it.
pub struct MapTypes {
    pub blob: Vec<u8>,
    pub key_type_id: u32,
    pub value_type_id: u32,
}

#[derive(Default)]
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    fn new() -> Self {
        Self {
            types: Vec::new(),
            strings: vec![0], // offset 0 is the empty name
            next_id: 1,       // id 0 is void
        }
    }

    fn string(&mut self, s: &str) -> u32 {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        offset
    }

    fn push(&mut self, words: &[u32]) -> u32 {
        for w in words {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn int(&mut self, bytes: u32, signed: bool) -> u32 {
        let name = self.string(Type::c_name(bytes, signed));
        let encoding = if signed { INT_SIGNED } else { 0 };
        self.push(&[name, KIND_INT << 24, bytes, encoding | (bytes * 8)])
    }

    /// Adds `ty` (and what it refers to) and returns its id; `name` names structs.
    fn add(&mut self, ty: &Type, name: &str) -> u32 {
        match ty {
            Type::Int { bytes, signed } => self.int(*bytes, *signed),
            Type::SpinLock => {
                let val = self.int(4, false);
                let name = self.string("bpf_spin_lock");
                let member = self.string("val");
                self.push(&[name, KIND_STRUCT << 24 | 1, 4, member, val, 0])
            }
            Type::Array { elem, len } => {
                let elem = self.add(elem, &format!("{name}_elem"));
                let index = self.int(4, false);
                self.push(&[0, KIND_ARRAY << 24, 0, elem, index, *len])
            }
            Type::Struct { fields } => {
                let member_ids: Vec<u32> = fields
                    .iter()
                    .map(|(field, ty)| self.add(ty, &format!("{name}_{field}")))
                    .collect();
                let struct_name = self.string(name);
                let mut words = vec![
                    struct_name,
                    KIND_STRUCT << 24 | fields.len() as u32,
                    ty.size(),
                ];
                for ((offset, (field, _)), id) in ty.field_offsets().zip(fields).zip(member_ids) {
                    let field_name = self.string(field);
                    words.extend([field_name, id, offset * 8]);
                }
                self.push(&words)
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        let header_len = 24u32;
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC.to_le_bytes());
        blob.push(1); // version
        blob.push(0); // flags
        for word in [
            header_len,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            blob.extend_from_slice(&word.to_le_bytes());
        }
        blob.extend_from_slice(&self.types);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

pub fn map_types(key: &Type, value: &Type) -> MapTypes {
    let mut b = Builder::new();
    let key_type_id = b.add(key, "sk_key");
    let value_type_id = b.add(value, "sk_value");
    MapTypes {
        blob: b.finish(),
        key_type_id,
        value_type_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_int_layout() {
        let int = Type::Int {
            bytes: 4,
            signed: true,
        };
        let t = map_types(&int, &int);
        assert_eq!(&t.blob[..4], &[0x9f, 0xeb, 1, 0]);
        let type_len = u32::from_le_bytes(t.blob[12..16].try_into().unwrap());
        assert_eq!(type_len, 2 * 16, "two BTF_KIND_INT entries of 16 bytes");
        assert_eq!((t.key_type_id, t.value_type_id), (1, 2));
    }
}
