//! The JSON Schema of a case file, for editors: yaml-language-server completes and checks
//! keys as you type. schemars generates it from the types serde reads a case with; two
//! things are added where the reading says more than a derive can: a step's mapping also
//! holds `expect` and `within` beside its operation's key, and `expect` offers the outcome
//! names the validator knows (`ok`, every errno). The operations' schemas serve a thread's
//! steps too, which have no `expect`, so the schema leaves a missing one to `harness
//! check`.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Value, json};

use super::{
    model::{CaseFile, VariantDecl},
    steps::Op,
};

/// The schema of a case file (JSON Schema 2020-12).
pub fn case_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let variant = generator.subschema_for::<VariantDecl>().to_value();
    let op = Op::json_schema(&mut generator).to_value();
    let mut schema = generator.into_root_schema_for::<CaseFile>().to_value();
    let expect = json!({ "$ref": "#/$defs/Expect" });
    // Op is untagged: its schema lists a reference to each concern's operations.
    let concerns: Vec<String> = op["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|branch| branch["$ref"].as_str())
        .filter_map(|reference| reference.rsplit('/').next())
        .map(String::from)
        .collect();
    for concern in concerns {
        if let Some(operations) = schema["$defs"][&concern]["oneOf"].as_array_mut() {
            for operation in operations {
                allow_expect(operation, &expect);
            }
        }
    }
    schema["$defs"]["Expect"] = expect_schema(variant);
    schema["title"] = json!("sk-storage harness case");
    schema
}

/// An operation's mapping, widened to a step's.
fn allow_expect(operation: &mut Value, expect: &Value) {
    let Some(properties) = operation["properties"].as_object_mut() else {
        return;
    };
    properties.insert("expect".into(), expect.clone());
    properties.insert(
        "within".into(),
        json!({
            "type": "string",
            "description": "Ask again until the expectation holds, for this long at most (500ms, 2s)."
        }),
    );
}

/// What a step expects: an outcome's name, a mapping (`{ value: … }`, `{ observed: … }`…),
/// or variants by kernel version.
fn expect_schema(variant: Value) -> Value {
    let names: Vec<&str> = ["ok", "not_listed", "no_record"]
        .into_iter()
        .chain(crate::errno::known_names())
        .collect();
    json!({
        "description": "ok, an errno name, a mapping such as { value: 7 }, or variants by kernel version",
        "anyOf": [
            { "type": "string", "enum": names },
            { "type": "object" },
            { "type": "array", "items": variant },
        ]
    })
}
