//! CEL expressions (cel-rust): compiled and checked when staff save them, evaluated over
//! `event`, `customer` and `counters` when events arrive. Pure: no I/O.
//!
//! An expression may name only the variables its place allows (an audience only
//! `customer`; a rule condition `event`, `customer` and `counters`), so a typo is refused at
//! save time instead of never matching. The empty expression means "always".

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use cel::{Context, Program, Value};
use serde::Serialize;

/// A customer's profile attributes as expressions see them (`customer.*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerAttrs {
    /// Whole years, or -1 when the birthday is unknown.
    pub age: i64,
    /// `under_18`, `18_29`, `30_44`, `45_59`, `60_plus` or `unknown`.
    pub age_band: String,
    pub tags: Vec<String>,
    pub elderly_mode: bool,
    pub locale: String,
    pub time_zone: String,
    /// `C1`..`C5`, or empty when not assessed.
    pub suitability: String,
    /// The channel the customer is using now (the event's, or the session's), may be empty.
    pub channel: String,
}

/// The age band of an age.
pub fn age_band(age: Option<i64>) -> &'static str {
    match age {
        None => "unknown",
        Some(a) if a < 18 => "under_18",
        Some(a) if a < 30 => "18_29",
        Some(a) if a < 45 => "30_44",
        Some(a) if a < 60 => "45_59",
        Some(_) => "60_plus",
    }
}

/// An event as conditions see it (`event.*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventAttrs<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub channel: &'a str,
    pub properties: &'a serde_json::Value,
}

/// A compiled expression; `None` inside means "always true". Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Expr(Option<Arc<Program>>);

/// Compiles `source`, allowing only the variables in `allowed`. The error is the parse
/// error (or the unknown variable) in words, for the API to show.
pub fn compile(source: &str, allowed: &[&str]) -> Result<Expr, String> {
    if source.trim().is_empty() {
        return Ok(Expr(None));
    }
    if source.len() > 4096 {
        return Err("the expression is longer than 4,096 characters".to_owned());
    }
    let program = Program::compile(source).map_err(|e| e.to_string())?;
    let references = program.references();
    for variable in references.variables() {
        if !allowed.contains(&variable) {
            return Err(format!(
                "unknown variable `{variable}`; this expression may use {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(Expr(Some(Arc::new(program))))
}

/// Compiled expressions by source text, so that a consumer rebuilding its view of the
/// live definitions does not compile the same CEL again (compiling costs far more than
/// evaluating). Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Compiled(Arc<Mutex<HashMap<CompiledKey, Result<Expr, String>>>>);

/// (source, allowed variables joined by commas).
type CompiledKey = (String, String);

/// Distinct expressions remembered; past it the cache starts afresh.
const COMPILED_MAX: usize = 10_000;

impl Compiled {
    /// [`compile`], once per (source, allowed variables).
    pub fn get(&self, source: &str, allowed: &[&str]) -> Result<Expr, String> {
        let key = (source.to_owned(), allowed.join(","));
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = map.get(&key) {
            return found.clone();
        }
        if map.len() >= COMPILED_MAX {
            map.clear();
        }
        let compiled = compile(source, allowed);
        map.insert(key, compiled.clone());
        compiled
    }
}

/// The variables an expression is evaluated against.
#[derive(Debug, Default)]
pub struct Vars<'a> {
    pub event: Option<EventAttrs<'a>>,
    pub customer: Option<&'a CustomerAttrs>,
    pub counters: Option<&'a BTreeMap<String, i64>>,
}

impl Expr {
    pub fn always() -> Self {
        Expr(None)
    }

    /// Whether the expression reads the variable `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|p| p.references().has_variable(name))
    }

    /// True only when the expression evaluates to `true`; an error (a missing property, a
    /// type mismatch) or a non-boolean counts as false, so a rule never fires by accident.
    pub fn matches(&self, vars: &Vars<'_>) -> bool {
        if self.0.is_none() {
            return true;
        }
        context(vars).is_some_and(|c| self.matches_in(&c))
    }

    /// Like [`Expr::matches`], with the variables already converted by [`context`] (one
    /// conversion per event serves every expression evaluated on it).
    pub fn matches_in(&self, context: &Context<'_, '_>) -> bool {
        match &self.0 {
            None => true,
            Some(program) => matches!(program.execute(context), Ok(Value::Bool(true))),
        }
    }
}

/// A value converted for CEL once, to bind into many contexts (a customer's attributes
/// serve all of their events in a batch).
pub fn value<T: Serialize>(v: &T) -> Option<Value> {
    cel::to_value(v).ok()
}

/// A context with CEL's standard library and no variables. Building one costs far more
/// than an evaluation (it registers every standard function), so a batch builds one and
/// evaluates each event in a child scope of it ([`context_of`]).
pub fn root() -> Context<'static, 'static> {
    Context::default()
}

/// A child scope of `root` binding the given converted variables.
pub fn context_of<'r>(
    root: &'r Context<'r, 'static>,
    event: Option<Value>,
    customer: Option<Value>,
    counters: Option<Value>,
) -> Context<'r, 'static> {
    let mut context = root.new_inner_scope();
    for (name, value) in [("event", event), ("customer", customer), ("counters", counters)] {
        if let Some(value) = value {
            context.add_variable_from_value(name, value);
        }
    }
    context
}

/// The variables converted for evaluation; `None` when one cannot be converted.
pub fn context(vars: &Vars<'_>) -> Option<Context<'static, 'static>> {
    let mut context = Context::default();
    if let Some(event) = &vars.event {
        context.add_variable("event", event).ok()?;
    }
    if let Some(customer) = vars.customer {
        context.add_variable("customer", customer).ok()?;
    }
    if let Some(counters) = vars.counters {
        context.add_variable("counters", counters).ok()?;
    }
    Some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> CustomerAttrs {
        CustomerAttrs {
            age: 65,
            age_band: "60_plus".into(),
            tags: vec!["payroll".into()],
            elderly_mode: true,
            locale: "zh-CN".into(),
            time_zone: "Asia/Shanghai".into(),
            suitability: "C3".into(),
            channel: "app".into(),
        }
    }

    #[test]
    fn conditions_see_event_customer_and_counters() {
        let props = serde_json::json!({"category": "wealth", "amount": 12});
        let counters = BTreeMap::from([("product_view".to_owned(), 3_i64)]);
        let c = customer();
        let vars = Vars {
            event: Some(EventAttrs {
                kind: "product_view",
                channel: "app",
                properties: &props,
            }),
            customer: Some(&c),
            counters: Some(&counters),
        };
        let all = ["event", "customer", "counters"];
        for ok in [
            "event.properties.category == 'wealth'",
            "event.type == 'product_view' && event.properties.amount > 10",
            "customer.age_band == '60_plus' && 'payroll' in customer.tags",
            "customer.elderly_mode && customer.suitability == 'C3'",
            "counters.product_view >= 3",
            "",
        ] {
            assert!(compile(ok, &all).expect(ok).matches(&vars), "{ok}");
        }
        for no in [
            "event.properties.category == 'loans'",
            "event.properties.missing == 1",
            "event.properties.category",
            "customer.age < 30",
        ] {
            assert!(!compile(no, &all).expect(no).matches(&vars), "{no}");
        }
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        let err = compile("event.type == ", &["event"]).expect_err("parse error");
        assert!(!err.is_empty());
        let err = compile("evnt.type == 'x'", &["event", "customer"]).expect_err("unknown variable");
        assert!(err.contains("evnt"), "{err}");
        assert!(compile("customer.age > 3", &["customer"]).is_ok());
    }

    #[test]
    fn age_bands() {
        assert_eq!(age_band(None), "unknown");
        assert_eq!(age_band(Some(17)), "under_18");
        assert_eq!(age_band(Some(29)), "18_29");
        assert_eq!(age_band(Some(44)), "30_44");
        assert_eq!(age_band(Some(59)), "45_59");
        assert_eq!(age_band(Some(60)), "60_plus");
    }
}
