//! Makes the eBPF object's BTF acceptable to every kernel from 5.2 on.
//!
//! rustc describes `core::ffi::c_void` (and any other fieldless `#[repr(u8)]` enum) as a
//! BTF enum of size 1. 5.2's `BPF_BTF_LOAD` accepts only 4-byte enums ("Expected size:4")
//! and refuses the whole object with EINVAL; 5.4 accepts it. aya sanitises other kinds
//! old kernels lack, not this one, so the harness widens such enums to 4 bytes before aya
//! reads the object. That is safe only where no struct or union holds the enum by value
//! (its size is part of the layout there); the object's `c_void` is only pointed to, and
//! any other use is refused here rather than described wrongly to the kernel.

use object::{Object, ObjectSection};

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
const TYPE_LEN: usize = 12;

/// BTF kinds whose trailing data this walk must skip (include/uapi/linux/btf.h).
mod kind {
    pub const INT: u32 = 1;
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
    let file = object::File::parse(object)?;
    let Some((offset, size)) = file
        .section_by_name(".BTF")
        .and_then(|section| section.file_range())
    else {
        return Ok(patched);
    };
    let start = usize::try_from(offset).map_err(|_| BtfCompatError::Malformed("offset"))?;
    let len = usize::try_from(size).map_err(|_| BtfCompatError::Malformed("size"))?;
    let btf = patched
        .get_mut(start..start + len)
        .ok_or(BtfCompatError::Malformed("section outside the file"))?;
    widen_in_btf(btf)?;
    Ok(patched)
}

/// Widens the small enums of a raw BTF blob in place.
fn widen_in_btf(btf: &mut [u8]) -> Result<(), BtfCompatError> {
    let u32_at = |bytes: &[u8], at: usize| -> Result<u32, BtfCompatError> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or(BtfCompatError::Malformed("truncated"))
    };
    if btf.len() < HEADER_LEN || u16::from_le_bytes([btf[0], btf[1]]) != BTF_MAGIC {
        return Err(BtfCompatError::Malformed("no little-endian BTF header"));
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let type_off = u32_at(btf, 8)? as usize;
    let type_len = u32_at(btf, 12)? as usize;
    let types_start = hdr_len + type_off;
    let types_end = types_start + type_len;
    if types_end > btf.len() {
        return Err(BtfCompatError::Malformed("type section outside the blob"));
    }

    // Type ids start at 1 (0 is void). Remember where each small enum's size lives, and
    // which types structs and unions hold by value.
    let mut small_enums: Vec<(u32, usize, u32)> = Vec::new();
    let mut members: Vec<u32> = Vec::new();
    let mut at = types_start;
    let mut id = 1u32;
    while at < types_end {
        let info = u32_at(btf, at + 4)?;
        let size_or_type = u32_at(btf, at + 8)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let data = at + TYPE_LEN;
        let data_len = match kind {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::ARRAY => 12,
            kind::STRUCT | kind::UNION => {
                for member in 0..vlen {
                    members.push(u32_at(btf, data + member * 12 + 4)?);
                }
                vlen * 12
            }
            kind::ENUM => {
                if size_or_type != 4 {
                    small_enums.push((id, at + 8, size_or_type));
                }
                vlen * 8
            }
            kind::FUNC_PROTO => vlen * 8,
            kind::DATASEC | kind::ENUM64 => vlen * 12,
            // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            _ => 0,
        };
        at = data + data_len;
        id += 1;
    }
    if at != types_end {
        return Err(BtfCompatError::Malformed("types overrun their section"));
    }
    if let Some(&(id, _, size)) = small_enums.iter().find(|(id, ..)| members.contains(id)) {
        return Err(BtfCompatError::EnumInLayout { id, size });
    }
    for (_, size_at, _) in small_enums {
        btf[size_at..size_at + 4].copy_from_slice(&4u32.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob of `types` (each a full type record), with an empty string section.
    fn blob(types: &[Vec<u32>]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types
            .iter()
            .flatten()
            .flat_map(|word| word.to_le_bytes())
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for word in [
            HEADER_LEN as u32,
            0,
            type_bytes.len() as u32,
            type_bytes.len() as u32,
            1,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&type_bytes);
        out.push(0);
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
    fn garbage_is_malformed_not_a_panic() {
        assert!(matches!(
            widen_in_btf(&mut [0u8; 8]),
            Err(BtfCompatError::Malformed(_))
        ));
        let mut truncated = blob(&[vec![0, info(kind::STRUCT, 3), 8]]);
        assert!(widen_in_btf(&mut truncated).is_err());
    }
}
