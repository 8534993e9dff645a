//! The parts of an EVE record Riposte reads, as borrowing serde structs:
//! unknown keys are skipped without being built, strings without escapes
//! are not copied.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// First pass: only the record's type. Every other value is skipped, so a
/// flow or stats record costs one scan and is never typed.
#[derive(Debug, Deserialize)]
pub(super) struct Kind<'a> {
    #[serde(borrow, default)]
    pub event_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Record<'a> {
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(default)]
    pub flow_id: Option<u64>,
    #[serde(borrow, default)]
    pub in_iface: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub src_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    pub src_port: Option<u16>,
    #[serde(borrow, default)]
    pub dest_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    pub dest_port: Option<u16>,
    #[serde(borrow, default)]
    pub proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub app_proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub direction: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub alert: Option<Alert<'a>>,
    #[serde(borrow, default)]
    pub http: Option<Http<'a>>,
    #[serde(borrow, default)]
    pub fileinfo: Option<FileInfo<'a>>,
    #[serde(borrow, default)]
    pub files: Option<Vec<FileInfo<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Alert<'a> {
    #[serde(borrow, default)]
    pub action: Option<Cow<'a, str>>,
    #[serde(default)]
    pub signature_id: Option<u64>,
    #[serde(borrow, default)]
    pub signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub category: Option<Cow<'a, str>>,
    #[serde(default)]
    pub severity: Option<u64>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Http<'a> {
    #[serde(borrow, default)]
    pub hostname: Option<Cow<'a, str>>,
    #[serde(default)]
    pub http_port: Option<u16>,
    #[serde(borrow, default)]
    pub url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub http_user_agent: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FileInfo<'a> {
    #[serde(borrow, default)]
    pub filename: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub sha256: Option<Cow<'a, str>>,
}

/// Rule metadata, `{"key": ["value", …]}`. Suricata always writes lists of
/// strings; anything else in a hand-made rule is dropped rather than
/// failing the alert.
#[derive(Debug, Default)]
pub(super) struct Metadata(pub BTreeMap<String, Vec<String>>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string lists")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let StringList(values) = map.next_value()?;
                    out.insert(key.into_owned(), values);
                }
                Ok(Metadata(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Metadata, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Metadata::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Metadata, E> {
                Ok(Metadata::default())
            }
        }
        d.deserialize_any(MapVisitor)
    }
}

/// A list of strings; a lone string is a list of one, and non-string
/// entries are skipped.
struct StringList(Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<MaybeString>()? {
                    out.extend(item.0);
                }
                Ok(StringList(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_owned()]))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringList, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StringList(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringList, E> {
                Ok(StringList(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StringList, E> {
                Ok(StringList(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StringList, E> {
                Ok(StringList(Vec::new()))
            }
        }
        d.deserialize_any(ListVisitor)
    }
}

/// A string, a number written as text, or nothing (any other value, skipped).
struct MaybeString(Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(ItemVisitor)
    }
}
