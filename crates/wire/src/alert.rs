//! `onscreen-events`: the alert that shows the image on stream (SPEC §2).

use crate::{Style, StyleId, Viewer};
use serde::{Deserialize, Serialize};

/// An event for the on-screen alerts service. Only images come from dynamo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "lowercase")]
pub enum OnscreenEvent {
    Image(ImageAlert),
}

/// A finished image, by style: `{"type": <style id>, "viewer", "details"}`.
/// Ghosts and friends keep the details §2 fixes; any other style's are
/// [`CustomDetails`] (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAlert {
    Ghost {
        viewer: Viewer,
        details: GhostDetails,
    },
    Friend {
        viewer: Viewer,
        details: FriendDetails,
    },
    Custom {
        style: StyleId,
        viewer: Viewer,
        details: CustomDetails,
    },
}

/// The shape every alert has on the wire, whatever its details.
#[derive(Serialize, Deserialize)]
struct Tagged<V, D> {
    #[serde(rename = "type")]
    style: StyleId,
    viewer: V,
    details: D,
}

impl Serialize for ImageAlert {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageAlert::Ghost { viewer, details } => Tagged {
                style: Style::Ghost.into(),
                viewer,
                details,
            }
            .serialize(serializer),
            ImageAlert::Friend { viewer, details } => Tagged {
                style: Style::Friend.into(),
                viewer,
                details,
            }
            .serialize(serializer),
            ImageAlert::Custom {
                style,
                viewer,
                details,
            } => Tagged {
                style: style.clone(),
                viewer,
                details,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ImageAlert {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Tagged {
            style,
            viewer,
            details,
        } = Tagged::<Viewer, serde_json::Value>::deserialize(deserializer)?;
        Ok(match style.builtin() {
            Some(Style::Ghost) => ImageAlert::Ghost {
                viewer,
                details: serde_json::from_value(details).map_err(D::Error::custom)?,
            },
            Some(Style::Friend) => ImageAlert::Friend {
                viewer,
                details: serde_json::from_value(details).map_err(D::Error::custom)?,
            },
            None => ImageAlert::Custom {
                style,
                viewer,
                details: serde_json::from_value(details).map_err(D::Error::custom)?,
            },
        })
    }
}

/// A streamer-defined style's details: a name when the style generates one,
/// the key colour when its image was keyed (or its complement, when the
/// model drew the transparency itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomDetails {
    pub image_url: String,
    /// The viewer's subject.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostDetails {
    pub image_url: String,
    /// The viewer's subject.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendDetails {
    pub image_url: String,
    /// The viewer's subject.
    pub description: String,
    /// The generated name of the friend.
    pub name: String,
    /// The keyed-out background colour, `#rrggbb` in lower case.
    pub background_color: String,
}
