//! The flags a case may name, with their bits from the uapi as aya_obj's generated
//! bindings spell them, and how a flags value reads: a name, a list of names, or an
//! integer for raw bits the kernel must refuse.

use aya_obj::generated::{
    BPF_ANY, BPF_EXIST, BPF_F_CLONE, BPF_F_INNER_MAP, BPF_F_LOCK, BPF_F_MMAPABLE,
    BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS, BPF_F_RDONLY,
    BPF_F_RDONLY_PROG, BPF_F_STACK_BUILD_ID, BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED,
    BPF_NOEXIST,
};

/// A flag as a case writes it (the uapi name without `BPF_` or `BPF_F_`) and its bits.
pub type Flag = (&'static str, u64);

/// `BPF_MAP_CREATE`'s `map_flags`.
pub const MAP: &[(&str, u32)] = &[
    ("NO_PREALLOC", BPF_F_NO_PREALLOC),
    ("NO_COMMON_LRU", BPF_F_NO_COMMON_LRU),
    ("NUMA_NODE", BPF_F_NUMA_NODE),
    ("RDONLY", BPF_F_RDONLY),
    ("WRONLY", BPF_F_WRONLY),
    ("STACK_BUILD_ID", BPF_F_STACK_BUILD_ID),
    ("ZERO_SEED", BPF_F_ZERO_SEED),
    ("RDONLY_PROG", BPF_F_RDONLY_PROG),
    ("WRONLY_PROG", BPF_F_WRONLY_PROG),
    ("CLONE", BPF_F_CLONE),
    ("MMAPABLE", BPF_F_MMAPABLE),
    ("PRESERVE_ELEMS", BPF_F_PRESERVE_ELEMS),
    ("INNER_MAP", BPF_F_INNER_MAP),
];

/// `BPF_MAP_UPDATE_ELEM`'s flags.
pub const UPDATE: &[Flag] = &[
    ("ANY", BPF_ANY as u64),
    ("NOEXIST", BPF_NOEXIST as u64),
    ("EXIST", BPF_EXIST as u64),
    ("F_LOCK", BPF_F_LOCK as u64),
];

/// `BPF_MAP_LOOKUP_ELEM`'s and `BPF_MAP_LOOKUP_AND_DELETE_ELEM`'s flags.
pub const LOOKUP: &[Flag] = &[("F_LOCK", BPF_F_LOCK as u64)];

/// `bpf_sk_storage_get`'s flags.
pub const GET: &[Flag] = &[("F_CREATE", crate::catalogue::F_CREATE)];

/// Problem with a flags value: where inside it (`None`: the value itself) and what.
pub struct FlagsError {
    pub index: Option<usize>,
    pub message: String,
}

/// The bits of a flags value: a name of `table`, a list of them, or an integer.
pub fn resolve(value: &serde_yaml::Value, table: &[Flag]) -> Result<u64, FlagsError> {
    let lookup = |name: &str, index| {
        table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| *bit)
            .ok_or_else(|| {
                let hint = crate::diagnostic::did_you_mean(name, table.iter().map(|(n, _)| *n));
                let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                FlagsError {
                    index,
                    message: format!("unknown flag `{name}` (known: {}){hint}", names.join(", ")),
                }
            })
    };
    match value {
        serde_yaml::Value::String(name) => lookup(name, None),
        serde_yaml::Value::Sequence(items) => {
            items.iter().enumerate().try_fold(0, |bits, (i, item)| {
                Ok(bits | lookup(item.as_str().unwrap_or("?"), Some(i))?)
            })
        }
        serde_yaml::Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
        _ => Err(FlagsError {
            index: None,
            message: "flags are a name, a list of names, or an integer".into(),
        }),
    }
}

/// ` (NOEXIST|F_LOCK)` for a label: the names of the bits set, the unknown ones in hex;
/// nothing for no bits.
pub fn render(bits: u64, table: &[Flag]) -> String {
    if bits == 0 {
        return String::new();
    }
    let mut names: Vec<String> = table
        .iter()
        .filter(|(_, bit)| *bit != 0 && bits & bit == *bit)
        .map(|(n, _)| (*n).to_string())
        .collect();
    let known: u64 = table.iter().map(|(_, b)| b).fold(0, |a, b| a | b);
    if bits & !known != 0 {
        names.push(format!("{:#x}", bits & !known));
    }
    format!(" ({})", names.join("|"))
}
