//! `onscreen-events`: the alert that shows the image on stream (SPEC §2).

use crate::Viewer;
use serde::{Deserialize, Serialize};

/// An event for the on-screen alerts service. Only images come from dynamo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "lowercase")]
pub enum OnscreenEvent {
    Image(ImageAlert),
}

/// A finished image, by style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ImageAlert {
    Ghost {
        viewer: Viewer,
        details: GhostDetails,
    },
    Friend {
        viewer: Viewer,
        details: FriendDetails,
    },
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
