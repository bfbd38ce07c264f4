//! The one list of stage kinds is the `stage_kinds!` call in `stages/mod.rs`:
//! adding a kind is one file in `src/stages/` and one line there (its doc
//! comment is the kind's help). The macro declares the kind's module, the
//! `StageSpec` enum the JSON Schema is generated from, the kind names, and the
//! [`Registry`] through which the engine types a `kind:`.

macro_rules! stage_kinds {
    ($( $(#[doc = $doc:literal])* $module:ident :: $variant:ident = $name:literal, )*) => {
        $( mod $module; pub use $module::$variant; )*

        /// A stage of the pipeline file, chosen by its `kind` (the JSON Schema's view).
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum StageSpec {
            $( $(#[doc = $doc])* $variant($variant), )*
        }

        /// The kind names.
        pub const KINDS: &[&str] = &[$($name),*];

        /// radpipe's stage kinds, for the engine.
        pub struct Kinds;

        impl radpipe_engine::stage::Registry for Kinds {
            fn kinds(&self) -> &'static [&'static str] {
                KINDS
            }

            // Deserialising the kind's own type keeps error paths precise (a
            // tagged enum would lose them).
            fn parse(
                &self,
                kind: &str,
                tree: &radpipe_engine::yaml::YNode,
                base: &[radpipe_engine::yaml::PathSeg],
                value: serde_json::Value,
            ) -> Option<Result<Box<dyn Stage>, radpipe_engine::Diagnostic>> {
                match kind {
                    $( $name => Some(radpipe_engine::spec::typed::<$variant>(tree, base, value).map(|s| Box::new(s) as Box<dyn Stage>)), )*
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use stage_kinds;
