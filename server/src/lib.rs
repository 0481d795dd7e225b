//! The procmon server (being written).
