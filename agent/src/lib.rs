//! The procmon agent (being written).
