//! `serde` for [`SegmentName`] (feature `serde`): a name travels as its string and is checked
//! again when it arrives, so a child handed a name gets a valid one or an error.

use crate::SegmentName;

impl serde::Serialize for SegmentName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SegmentName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        SegmentName::new(&name).map_err(serde::de::Error::custom)
    }
}
