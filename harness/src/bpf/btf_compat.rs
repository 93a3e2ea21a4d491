//! Makes the eBPF object loadable on every kernel from 5.2 on, by editing its BTF in place.
//!
//! # Enum sizes
//!
//! rustc describes `core::ffi::c_void` (and any other fieldless `#[repr(u8)]` enum) as a
//! BTF enum of size 1. 5.2's `BPF_BTF_LOAD` accepts only 4-byte enums ("Expected size:4")
//! and refuses the whole object with EINVAL; 5.4 accepts it. aya sanitises other kinds
//! old kernels lack, not this one, so the harness widens such enums to 4 bytes before aya
//! reads the object. That is safe only where no struct or union holds the enum by value
//! (its size is part of the layout there); the object's `c_void` is only pointed to, and
//! any other use is refused here rather than described wrongly to the kernel.
//!
//! # The clone map on kernels without BPF_F_CLONE
//!
//! A BTF map definition states its flags as the length of an array type (`map_flags:
//! *const [i32; FLAGS]`), and aya creates every map of the object at load. Kernels without
//! `BPF_F_CLONE` (before 5.4) refuse the object's clone twin, and with it the whole object.
//! [`set_map_flags`] rewrites that length so the twin is created as a plain map there;
//! cases that use the twin are skipped on such kernels, so no result depends on it.

use object::{Object, ObjectSection};

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
const TYPE_LEN: usize = 12;

/// BTF kinds whose trailing data this walk must skip (include/uapi/linux/btf.h).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const DECL_TAG: u32 = 17;
    pub const ENUM64: u32 = 19;
}

#[derive(Debug, thiserror::Error)]
pub enum BtfCompatError {
    #[error("the eBPF object has no BTF map definition {map} with a `map_flags` member")]
    NoMapFlags { map: String },
    #[error("the eBPF object is not a readable ELF file: {0}")]
    Elf(#[from] object::Error),
    #[error("the eBPF object's .BTF section is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "BTF type {id} is a {size}-byte enum held by value in a struct or union; kernels before 5.4 accept only 4-byte enums, so the object cannot be described to them"
    )]
    EnumInLayout { id: u32, size: u32 },
}

/// `object` with every BTF enum whose size is not 4 widened to 4 bytes (a copy, since the
/// embedded object is read-only). An object without .BTF comes back unchanged.
pub fn widen_small_enums(object: &[u8]) -> Result<Vec<u8>, BtfCompatError> {
    let mut patched = object.to_vec();
    if let Some(btf) = btf_section(&mut patched)? {
        widen_in_btf(btf)?;
    }
    Ok(patched)
}

/// `object` with the BTF map definition `map` declaring `flags` as its map flags.
pub fn set_map_flags(object: &[u8], map: &str, flags: u32) -> Result<Vec<u8>, BtfCompatError> {
    let mut patched = object.to_vec();
    let no_map = || BtfCompatError::NoMapFlags {
        map: map.to_string(),
    };
    let btf = btf_section(&mut patched)?.ok_or_else(no_map)?;
    let nelems_at = map_flags_length_at(btf, map)?.ok_or_else(no_map)?;
    btf[nelems_at..nelems_at + 4].copy_from_slice(&flags.to_le_bytes());
    Ok(patched)
}

/// The .BTF section of an ELF object, when it has one.
fn btf_section(object: &mut [u8]) -> Result<Option<&mut [u8]>, BtfCompatError> {
    let Some((offset, size)) = object::File::parse(&*object)?
        .section_by_name(".BTF")
        .and_then(|section| section.file_range())
    else {
        return Ok(None);
    };
    let start = usize::try_from(offset).map_err(|_| BtfCompatError::Malformed("offset"))?;
    let len = usize::try_from(size).map_err(|_| BtfCompatError::Malformed("size"))?;
    object
        .get_mut(start..start + len)
        .map(Some)
        .ok_or(BtfCompatError::Malformed("section outside the file"))
}

/// One type record of a BTF blob: where it starts, its kind, vlen and size-or-type word.
struct TypeRecord {
    at: usize,
    kind: u32,
    vlen: usize,
    size_or_type: u32,
}

impl TypeRecord {
    /// Offset of the kind-specific data after the common 12 bytes.
    fn data(&self) -> usize {
        self.at + TYPE_LEN
    }
}

/// The parsed layout of a BTF blob: its type records (index 0 is type id 1) and where its
/// string section lies.
struct Layout {
    types: Vec<TypeRecord>,
    strings: std::ops::Range<usize>,
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, BtfCompatError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or(BtfCompatError::Malformed("truncated"))
}

fn layout(btf: &[u8]) -> Result<Layout, BtfCompatError> {
    if btf.len() < HEADER_LEN || u16::from_le_bytes([btf[0], btf[1]]) != BTF_MAGIC {
        return Err(BtfCompatError::Malformed("no little-endian BTF header"));
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let type_off = u32_at(btf, 8)? as usize;
    let type_len = u32_at(btf, 12)? as usize;
    let str_off = u32_at(btf, 16)? as usize;
    let str_len = u32_at(btf, 20)? as usize;
    let types_start = hdr_len + type_off;
    let types_end = types_start + type_len;
    let strings = hdr_len + str_off..hdr_len + str_off + str_len;
    if types_end > btf.len() || strings.end > btf.len() {
        return Err(BtfCompatError::Malformed("sections outside the blob"));
    }
    let mut types = Vec::new();
    let mut at = types_start;
    while at < types_end {
        let info = u32_at(btf, at + 4)?;
        let record = TypeRecord {
            at,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            size_or_type: u32_at(btf, at + 8)?,
        };
        let data_len = match record.kind {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::ARRAY => 12,
            kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => record.vlen * 12,
            kind::ENUM | kind::FUNC_PROTO => record.vlen * 8,
            // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            _ => 0,
        };
        at = record.data() + data_len;
        types.push(record);
    }
    if at != types_end {
        return Err(BtfCompatError::Malformed("types overrun their section"));
    }
    Ok(Layout { types, strings })
}

impl Layout {
    fn record(&self, id: u32) -> Option<&TypeRecord> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    fn name_is(&self, btf: &[u8], name_off: u32, name: &str) -> bool {
        let start = self.strings.start + name_off as usize;
        btf.get(start..self.strings.end)
            .and_then(|rest| rest.split(|b| *b == 0).next())
            .is_some_and(|found| found == name.as_bytes())
    }
}

/// Where the length of the `map_flags` array of BTF map `map` is stored.
fn map_flags_length_at(btf: &[u8], map: &str) -> Result<Option<usize>, BtfCompatError> {
    let layout = layout(btf)?;
    let Some(var) = layout
        .types
        .iter()
        .find(|t| t.kind == kind::VAR && layout.name_is(btf, u32_at(btf, t.at).unwrap_or(0), map))
    else {
        return Ok(None);
    };
    let Some(definition) = layout
        .record(var.size_or_type)
        .filter(|t| t.kind == kind::STRUCT)
    else {
        return Ok(None);
    };
    for member in 0..definition.vlen {
        let member_at = definition.data() + member * 12;
        if !layout.name_is(btf, u32_at(btf, member_at)?, "map_flags") {
            continue;
        }
        let array = layout
            .record(u32_at(btf, member_at + 4)?)
            .filter(|t| t.kind == kind::PTR)
            .and_then(|pointer| layout.record(pointer.size_or_type))
            .filter(|t| t.kind == kind::ARRAY);
        // btf_array: element type, index type, number of elements.
        return Ok(array.map(|array| array.data() + 8));
    }
    Ok(None)
}

/// Widens the small enums of a raw BTF blob in place.
fn widen_in_btf(btf: &mut [u8]) -> Result<(), BtfCompatError> {
    let layout = layout(btf)?;
    // Type ids start at 1 (0 is void).
    let small_enums: Vec<(u32, &TypeRecord)> = (1..)
        .zip(&layout.types)
        .filter(|(_, t)| t.kind == kind::ENUM && t.size_or_type != 4)
        .collect();
    let mut members = Vec::new();
    for t in layout
        .types
        .iter()
        .filter(|t| matches!(t.kind, kind::STRUCT | kind::UNION))
    {
        for member in 0..t.vlen {
            members.push(u32_at(btf, t.data() + member * 12 + 4)?);
        }
    }
    if let Some((id, t)) = small_enums.iter().find(|(id, _)| members.contains(id)) {
        return Err(BtfCompatError::EnumInLayout {
            id: *id,
            size: t.size_or_type,
        });
    }
    let size_fields: Vec<usize> = small_enums.iter().map(|(_, t)| t.at + 8).collect();
    for at in size_fields {
        btf[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob of `types` (each a full type record), with an empty string section.
    fn blob(types: &[Vec<u32>]) -> Vec<u8> {
        blob_with_strings(types, b"\0")
    }

    fn blob_with_strings(types: &[Vec<u32>], strings: &[u8]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types
            .iter()
            .flatten()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        let type_len = type_bytes.len() as u32;
        for word in [
            HEADER_LEN as u32,
            0,
            type_len,
            type_len,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&type_bytes);
        out.extend_from_slice(strings);
        out
    }

    fn info(kind: u32, vlen: u32) -> u32 {
        (kind << 24) | vlen
    }

    fn size_of_type(btf: &[u8], record_start: usize) -> u32 {
        let at = HEADER_LEN + record_start + 8;
        u32::from_le_bytes(btf[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn a_pointed_to_one_byte_enum_becomes_four_bytes() {
        let mut btf = blob(&[
            // [1] enum c_void, size 1, two values
            vec![0, info(kind::ENUM, 2), 1, 0, 0, 0, 1],
            // [2] pointer to [1]
            vec![0, 2 << 24, 1],
            // [3] int, size 4
            vec![0, info(kind::INT, 0), 4, 32],
            // [4] struct { ptr: *c_void, x: int }
            vec![0, info(kind::STRUCT, 2), 12, 0, 2, 0, 0, 3, 64],
        ]);
        widen_in_btf(&mut btf).expect("widened");
        assert_eq!(size_of_type(&btf, 0), 4);
        assert_eq!(size_of_type(&btf, 28 + 12), 4, "the int is untouched");
    }

    #[test]
    fn a_small_enum_inside_a_struct_is_refused() {
        let mut btf = blob(&[
            vec![0, info(kind::ENUM, 1), 1, 0, 0],
            vec![0, info(kind::STRUCT, 1), 1, 0, 1, 0],
        ]);
        assert!(matches!(
            widen_in_btf(&mut btf),
            Err(BtfCompatError::EnumInLayout { id: 1, size: 1 })
        ));
    }

    #[test]
    fn a_maps_flags_are_the_length_of_its_map_flags_array() {
        // Strings: 1 "STORAGE_CLONE", 15 "map_flags", 25 "type".
        let strings = b"\0STORAGE_CLONE\0map_flags\0type\0";
        let btf = blob_with_strings(
            &[
                // [1] int
                vec![0, info(kind::INT, 0), 4, 32],
                // [2] int[513] (NO_PREALLOC | CLONE)
                vec![0, info(kind::ARRAY, 0), 0, 1, 1, 513],
                // [3] pointer to [2]
                vec![0, info(kind::PTR, 0), 2],
                // [4] int[24] (the map type)
                vec![0, info(kind::ARRAY, 0), 0, 1, 1, 24],
                // [5] pointer to [4]
                vec![0, info(kind::PTR, 0), 4],
                // [6] struct { type: *[24], map_flags: *[513] }
                vec![0, info(kind::STRUCT, 2), 16, 25, 5, 0, 15, 3, 64],
                // [7] var STORAGE_CLONE: [6]
                vec![1, info(kind::VAR, 0), 6, 1],
            ],
            strings,
        );
        let length_at = map_flags_length_at(&btf, "STORAGE_CLONE")
            .expect("parses")
            .expect("found");
        assert_eq!(u32_at(&btf, length_at).unwrap(), 513);
        assert_eq!(map_flags_length_at(&btf, "STORAGE").unwrap(), None);
        assert_eq!(map_flags_length_at(&btf, "map_flags").unwrap(), None);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(matches!(
            widen_in_btf(&mut [0u8; 8]),
            Err(BtfCompatError::Malformed(_))
        ));
        let mut truncated = blob(&[vec![0, info(kind::STRUCT, 3), 8]]);
        assert!(widen_in_btf(&mut truncated).is_err());
    }
}
