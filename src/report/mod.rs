//! Report building blocks: figures as SVG.

pub mod svg;
