//! Tests of compilation and evaluation across the expression modules.
use super::node::{ArithOp, BoolNode, CmpOp, FloatNode, IntNode, Typed};
use super::*;
use eddy_api::key::FieldKeys;
use eddy_api::{Batch, DataType, Datum, Field, KeySelector, OwnedDatum, Schema, Span, Spanned};
use proptest::prelude::*;

const TS: i64 = 1_704_067_200_000; // 2024-01-01 00:00:00 UTC

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("auction", DataType::Int),
        Field::new("price", DataType::Float),
        Field::new("channel", DataType::String),
        Field::new("ts", DataType::Timestamp),
        Field::new("flag", DataType::Bool),
        Field::new("bidder", DataType::Int),
        Field::new("My Col", DataType::Int),
    ])
}

/// An expression written at line 5, column 12 of a job file.
fn sp(text: &str) -> Spanned<String> {
    Spanned::new(Span::new(5, 12), text.to_string())
}

fn full_row() -> Batch {
    let mut b = Batch::new(7);
    b.push_row(&[
        Datum::Int(1000),
        Datum::Float(12.5),
        Datum::Str("Apple"),
        Datum::Timestamp(TS),
        Datum::Bool(true),
        Datum::Int(7),
        Datum::Int(3),
    ]);
    b
}

fn null_row() -> Batch {
    let mut b = Batch::new(7);
    b.push_row(&[Datum::Null; 7]);
    b
}

fn compile(text: &str) -> Expr {
    Expr::compile(&sp(text), &schema()).unwrap_or_else(|d| panic!("`{text}` failed: {d:?}"))
}

fn eval_on(text: &str, b: &Batch) -> OwnedDatum {
    compile(text).eval(b.row(0)).into_owned_datum()
}

/// Evaluates on the full row.
fn ev(text: &str) -> OwnedDatum {
    eval_on(text, &full_row())
}

/// Evaluates on the all-NULL row.
fn evn(text: &str) -> OwnedDatum {
    eval_on(text, &null_row())
}

fn s(v: &str) -> OwnedDatum {
    OwnedDatum::Str(v.into())
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match Expr::compile(&sp(text), &schema()) {
        Ok(e) => panic!("`{text}` compiled to {e:?}"),
        Err(d) => d.0,
    }
}

fn error(text: &str) -> Diagnostic {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

use OwnedDatum::{Bool as B, Float as F, Int as I, Null as N, Timestamp as T};

#[test]
fn fields_and_literals() {
    assert_eq!(ev("auction"), I(1000));
    assert_eq!(ev("\"My Col\""), I(3));
    assert_eq!(ev("AUCTION"), I(1000), "unquoted names match case-insensitively");
    assert_eq!(ev("price"), F(12.5));
    assert_eq!(ev("channel"), s("Apple"));
    assert_eq!(ev("ts"), T(TS));
    assert_eq!(ev("flag"), B(true));
    assert_eq!(ev("'it''s'"), s("it's"));
    assert_eq!(ev("TRUE"), B(true));
    assert_eq!(ev("1.5e3"), F(1500.0));
    assert_eq!(ev("-9223372036854775808"), I(i64::MIN));
    assert_eq!(ev("CAST(NULL AS int)"), N);
    assert_eq!(evn("auction"), N);
}

#[test]
fn arithmetic() {
    assert_eq!(ev("auction + 1"), I(1001));
    assert_eq!(ev("auction / 3"), I(333));
    assert_eq!(ev("-7 / 2"), I(-3), "int division truncates");
    assert_eq!(ev("-7 % 3"), I(-1));
    assert_eq!(ev("auction * 0.5"), F(500.0));
    assert_eq!(ev("price * 2"), F(25.0));
    assert_eq!(ev("price - auction"), F(-987.5));
    assert_eq!(ev("-auction"), I(-1000));
    assert_eq!(ev("-price"), F(-12.5));
    assert_eq!(ev("+auction"), I(1000));
    assert_eq!(ev("auction + bidder * 2"), I(1014));
    assert_eq!(ev("(auction + bidder) * 2"), I(2014));
    assert_eq!(ev("9223372036854775807 + auction"), I(i64::MAX.wrapping_add(1000)), "overflow wraps");
    assert_eq!(ev("-9223372036854775808 / -1"), I(i64::MIN));
}

#[test]
fn division_by_zero_is_null() {
    assert_eq!(ev("auction / 0"), N);
    assert_eq!(ev("auction % 0"), N);
    assert_eq!(ev("price / 0"), N);
    assert_eq!(ev("price % 0.0"), N);
    assert_eq!(ev("auction / (bidder - 7)"), N);
}

#[test]
fn null_propagates() {
    for text in ["auction + 1", "price * 2", "-auction", "lower(channel)", "channel || 'x'", "ts + 1", "abs(price)"] {
        assert_eq!(evn(text), N, "{text}");
    }
    assert_eq!(ev("auction + NULL"), N);
    assert_eq!(ev("auction = NULL"), N);
}

#[test]
fn timestamps() {
    assert_eq!(ev("ts + 1000"), T(TS + 1000));
    assert_eq!(ev("1000 + ts"), T(TS + 1000));
    assert_eq!(ev("ts - 1000"), T(TS - 1000));
    assert_eq!(ev("ts - ts"), I(0));
    assert_eq!(ev("ts + INTERVAL '1' SECOND"), T(TS + 1000));
    assert_eq!(ev("ts - INTERVAL '2 minutes'"), T(TS - 120_000));
    assert_eq!(ev("ts = TIMESTAMP '2024-01-01 00:00:00'"), B(true));
    assert_eq!(ev("ts > 0"), B(true));
    assert_eq!(ev("ts = '2024-01-01 00:00:00'"), B(true), "text literals compare as timestamps");
    assert_eq!(ev("'2023-12-31' < ts"), B(true));
    assert_eq!(ev("ts BETWEEN '2023-12-31' AND '2024-01-02'"), B(true));
    assert_eq!(ev("ts IN ('2024-01-01', '2025-01-01')"), B(true));
    assert_eq!(error("ts > 'noon'").message, "cannot compare timestamp_ms and string");
    assert_eq!(ev("ts < 1.5"), B(false));
    assert_eq!(compile("ts + 1").data_type(), DataType::Timestamp);
    assert_eq!(compile("ts - ts").data_type(), DataType::Int);
}

#[test]
fn comparisons() {
    assert_eq!(ev("auction = 1000"), B(true));
    assert_eq!(ev("1000 = auction"), B(true));
    assert_eq!(ev("auction <> 1000"), B(false));
    assert_eq!(ev("auction != 999"), B(true));
    assert_eq!(ev("5 < auction"), B(true));
    assert_eq!(ev("auction >= 1000"), B(true));
    assert_eq!(ev("auction > price"), B(true));
    assert_eq!(ev("price <= 12.5"), B(true));
    assert_eq!(ev("12 < price"), B(true));
    assert_eq!(ev("channel = 'Apple'"), B(true));
    assert_eq!(ev("channel < 'B'"), B(true));
    assert_eq!(ev("'B' > channel"), B(true));
    assert_eq!(ev("channel > lower(channel)"), B(false), "uppercase sorts first");
    assert_eq!(ev("flag = TRUE"), B(true));
    assert_eq!(ev("flag <> (auction > 1)"), B(false));
    assert_eq!(evn("auction = 1000"), N);
    assert_eq!(evn("channel = 'Apple'"), N);
    assert_eq!(evn("price < 1"), N);
}

#[test]
fn three_valued_logic() {
    assert_eq!(evn("flag AND FALSE"), B(false));
    assert_eq!(evn("FALSE AND flag"), B(false));
    assert_eq!(evn("flag AND TRUE"), N);
    assert_eq!(evn("flag OR TRUE"), B(true));
    assert_eq!(evn("flag OR FALSE"), N);
    assert_eq!(evn("NOT flag"), N);
    assert_eq!(evn("flag AND flag"), N);
    assert_eq!(ev("flag AND auction > 1"), B(true));
    assert_eq!(ev("NOT flag OR auction = 1"), B(false));
    assert_eq!(ev("NULL AND FALSE"), B(false));
    assert_eq!(ev("NULL OR TRUE"), B(true));
    assert_eq!(ev("NOT NULL"), N);
}

#[test]
fn null_tests() {
    assert_eq!(ev("channel IS NULL"), B(false));
    assert_eq!(evn("channel IS NULL"), B(true));
    assert_eq!(evn("auction + 1 IS NOT NULL"), B(false));
    assert_eq!(ev("NULL IS NULL"), B(true));
    assert_eq!(evn("flag IS TRUE"), B(false));
    assert_eq!(evn("flag IS NOT TRUE"), B(true));
    assert_eq!(evn("flag IS FALSE"), B(false));
    assert_eq!(ev("flag IS NOT FALSE"), B(true));
    assert_eq!(ev("flag IS FALSE"), B(false));
}

#[test]
fn between_and_in() {
    assert_eq!(ev("auction BETWEEN 999 AND 1001"), B(true));
    assert_eq!(ev("auction BETWEEN 1001 AND 2000"), B(false));
    assert_eq!(ev("auction NOT BETWEEN 1001 AND 2000"), B(true));
    assert_eq!(ev("price BETWEEN 12 AND 12.5"), B(true));
    assert_eq!(ev("channel BETWEEN 'A' AND 'B'"), B(true));
    assert_eq!(evn("auction BETWEEN 1 AND 2"), N);
    assert_eq!(ev("auction BETWEEN NULL AND 2"), B(false), "FALSE AND NULL is FALSE");
    assert_eq!(ev("auction BETWEEN 1 AND NULL"), N);

    assert_eq!(ev("auction IN (1, 1000)"), B(true));
    assert_eq!(ev("auction IN (1, 2)"), B(false));
    assert_eq!(ev("auction NOT IN (1, 2)"), B(true));
    assert_eq!(ev("auction IN (1, NULL)"), N);
    assert_eq!(ev("auction NOT IN (1, NULL)"), N);
    assert_eq!(ev("auction IN (1000, NULL)"), B(true));
    assert_eq!(ev("auction IN (1000.0, 2)"), B(true));
    assert_eq!(ev("channel IN ('x', 'Apple')"), B(true));
    assert_eq!(ev("auction IN (bidder, auction)"), B(true));
    assert_eq!(evn("auction IN (1, 2)"), N);
}

#[test]
fn like() {
    assert_eq!(ev("channel LIKE 'App%'"), B(true));
    assert_eq!(ev("channel LIKE '%pl%'"), B(true));
    assert_eq!(ev("channel LIKE '%ple'"), B(true));
    assert_eq!(ev("channel LIKE 'A_ple'"), B(true));
    assert_eq!(ev("channel NOT LIKE 'A_ple'"), B(false));
    assert_eq!(ev("channel LIKE 'a%'"), B(false), "LIKE is case-sensitive");
    assert_eq!(ev("lower(channel) LIKE 'a%'"), B(true));
    assert_eq!(ev("channel LIKE channel"), B(true));
    assert_eq!(ev("channel LIKE 'Apple!%' ESCAPE '!'"), B(false));
    assert_eq!(ev("'50%' LIKE '50!%' ESCAPE '!'"), B(true));
    assert_eq!(evn("channel LIKE '%'"), N);
    assert_eq!(ev("channel LIKE NULL"), N);
}

#[test]
fn case_expressions() {
    assert_eq!(ev("CASE WHEN auction > 10 THEN 'big' ELSE 'small' END"), s("big"));
    assert_eq!(ev("CASE WHEN auction > 10000 THEN 'big' END"), N);
    assert_eq!(ev("CASE WHEN auction > 10000 THEN 1 WHEN auction > 100 THEN 2 ELSE 3 END"), I(2));
    assert_eq!(ev("CASE auction WHEN 1 THEN 'one' WHEN 1000 THEN 'thousand' END"), s("thousand"));
    assert_eq!(ev("CASE WHEN flag THEN 1 ELSE 2.5 END"), F(1.0));
    assert_eq!(evn("CASE WHEN flag THEN 'y' ELSE 'n' END"), s("n"), "a NULL condition is not true");
    assert_eq!(evn("CASE channel WHEN 'a' THEN 1 ELSE 0 END"), I(0));
    assert_eq!(ev("CASE WHEN flag THEN ts END"), T(TS));
    assert_eq!(compile("CASE WHEN flag THEN NULL ELSE price END").data_type(), DataType::Float);
}

#[test]
fn casts() {
    assert_eq!(ev("CAST(auction AS varchar)"), s("1000"));
    assert_eq!(ev("CAST(auction AS string)"), s("1000"));
    assert_eq!(ev("CAST(price AS string)"), s("12.5"));
    assert_eq!(ev("CAST(2.0 AS string)"), s("2.0"));
    assert_eq!(ev("CAST('42' AS int) + 1"), I(43));
    assert_eq!(ev("CAST(' 42 ' AS bigint)"), I(42));
    assert_eq!(ev("CAST(channel AS int)"), N, "text that is not a number casts to NULL");
    assert_eq!(ev("CAST(price AS int)"), I(12));
    assert_eq!(ev("CAST(-2.7 AS int)"), I(-2));
    assert_eq!(ev("CAST(auction AS double)"), F(1000.0));
    assert_eq!(ev("CAST(auction AS float)"), F(1000.0));
    assert_eq!(ev("CAST('2.5' AS double)"), F(2.5));
    assert_eq!(ev("CAST(ts AS string)"), s("2024-01-01 00:00:00.000"));
    assert_eq!(ev("CAST(ts AS bigint)"), I(TS));
    assert_eq!(ev("CAST(auction AS timestamp)"), T(1000));
    assert_eq!(ev("CAST('2024-01-01' AS timestamp)"), T(TS));
    assert_eq!(ev("CAST(auction AS boolean)"), B(true));
    assert_eq!(ev("CAST('FALSE' AS boolean)"), B(false));
    assert_eq!(ev("CAST(flag AS int)"), I(1));
    assert_eq!(ev("CAST(flag AS varchar)"), s("true"));
    assert_eq!(ev("CAST(channel AS varchar(10))"), s("Apple"));
    assert_eq!(evn("CAST(auction AS string)"), N);
    assert_eq!(compile("CAST(auction AS double)").data_type(), DataType::Float);
}

#[test]
fn string_functions() {
    assert_eq!(ev("lower(channel)"), s("apple"));
    assert_eq!(ev("upper(channel)"), s("APPLE"));
    assert_eq!(ev("LOWER('ÄB')"), s("äb"));
    assert_eq!(ev("length(channel)"), I(5));
    assert_eq!(ev("char_length('héllo')"), I(5));
    assert_eq!(ev("trim('  a b  ')"), s("a b"));
    assert_eq!(ev("ltrim('  a ')"), s("a "));
    assert_eq!(ev("rtrim('  a ')"), s("  a"));
    assert_eq!(ev("trim(both 'x' from 'xxaxx')"), s("a"));
    assert_eq!(ev("trim(leading 'x' from 'xxaxx')"), s("axx"));
    assert_eq!(ev("trim(trailing 'x' from 'xxaxx')"), s("xxa"));
    assert_eq!(ev("substring(channel, 2, 3)"), s("ppl"));
    assert_eq!(ev("substring(channel from 2 for 3)"), s("ppl"));
    assert_eq!(ev("substring(channel from 3)"), s("ple"));
    assert_eq!(ev("substr(channel, 4)"), s("le"));
    assert_eq!(ev("substring(channel, 0, 2)"), s("A"));
    assert_eq!(ev("substring(channel, 2, -1)"), N);
    assert_eq!(ev("replace(channel, 'p', 'P')"), s("APPle"));
    assert_eq!(ev("replace(channel, '', 'x')"), s("Apple"));
    assert_eq!(ev("concat(channel, '-', auction)"), s("Apple-1000"));
    assert_eq!(ev("channel || '-' || auction || '-' || flag"), s("Apple-1000-true"));
    assert_eq!(ev("concat(channel, NULL)"), N);
    assert_eq!(evn("substring(channel, 1, 2)"), N);
}

#[test]
fn numeric_functions() {
    assert_eq!(ev("abs(-auction)"), I(1000));
    assert_eq!(ev("abs(-2.5)"), F(2.5));
    assert_eq!(ev("round(price)"), F(13.0));
    assert_eq!(ev("round(2.345, 2)"), F(2.35));
    assert_eq!(ev("round(auction + 51, -2)"), I(1100));
    assert_eq!(ev("round(auction, 2)"), I(1000));
    assert_eq!(ev("floor(price)"), F(12.0));
    assert_eq!(ev("ceil(price)"), F(13.0));
    assert_eq!(ev("ceiling(-price)"), F(-12.0));
    assert_eq!(ev("floor(auction)"), I(1000));
    assert_eq!(ev("floor(-0.5)"), F(-1.0));
}

#[test]
fn choice_functions() {
    assert_eq!(evn("coalesce(auction, bidder, 5)"), I(5));
    assert_eq!(ev("coalesce(NULL, auction)"), I(1000));
    assert_eq!(evn("coalesce(price, auction)"), N);
    assert_eq!(ev("coalesce(price, auction)"), F(12.5));
    assert_eq!(ev("greatest(auction, bidder, 3)"), I(1000));
    assert_eq!(ev("least(auction, bidder, 3)"), I(3));
    assert_eq!(ev("greatest(price, 20)"), F(20.0));
    assert_eq!(ev("least('b', channel)"), s("Apple"));
    assert_eq!(ev("greatest(auction, NULL)"), N);
}

#[test]
fn constants_fold_and_common_shapes_specialise() {
    assert!(matches!(compile("1 + 2 * 3").node, Typed::Int(IntNode::Lit(7))));
    assert!(matches!(compile("upper('a') = 'A'").node, Typed::Bool(BoolNode::Lit(true))));
    assert!(matches!(compile("auction > 1000 / 2").node, Typed::Bool(BoolNode::ColCmpInt(CmpOp::Gt, 0, 500))));
    assert!(matches!(compile("10 > auction").node, Typed::Bool(BoolNode::ColCmpInt(CmpOp::Lt, 0, 10))));
    assert!(matches!(compile("price * 0.908").node, Typed::Float(FloatNode::ColLit(ArithOp::Mul, 1, _))));
    assert!(matches!(compile("auction * 0.5").node, Typed::Float(FloatNode::ColLit(ArithOp::Mul, 0, _))));
    let e = compile("auction % 123 = 0");
    match &e.node {
        Typed::Bool(BoolNode::CmpIntLit(CmpOp::Eq, inner, 0)) => {
            assert!(matches!(**inner, IntNode::ColLit(ArithOp::Mod, 0, 123)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(compile("channel = 'x'").node, Typed::Bool(BoolNode::ColCmpStr(CmpOp::Eq, 2, _))));
    assert!(matches!(compile("channel IS NULL").node, Typed::Bool(BoolNode::ColIsNull(2))));
}

#[test]
fn columns_text_and_types() {
    let e = compile("auction");
    assert_eq!((e.column(), e.data_type(), e.text()), (Some(0), DataType::Int, "auction"));
    assert_eq!(compile("(channel)").column(), Some(2));
    assert_eq!(compile("\"My Col\"").column(), Some(6));
    assert_eq!(compile("auction + 0").column(), None);
    assert_eq!(compile("CAST(ts AS int)").column(), None);
    assert_eq!(compile("channel || 'x'").data_type(), DataType::String);
    assert_eq!(compile("length(channel)").data_type(), DataType::Int);
    assert_eq!(compile("auction > 1").data_type(), DataType::Bool);
}

#[test]
fn push_into_and_eval_bool() {
    let exprs: Vec<Expr> =
        ["auction", "lower(channel)", "price * 2", "ts + 1", "channel"].into_iter().map(compile).collect();
    let input = full_row();
    let mut out = Batch::new(exprs.len());
    for row in [input.row(0), null_row().row(0)] {
        exprs.iter().for_each(|e| e.push_into(row, &mut out));
    }
    assert_eq!(out.len(), 2);
    let r = out.row(0);
    assert_eq!(r.get(0), Datum::Int(1000));
    assert_eq!(r.get(1), Datum::Str("apple"));
    assert_eq!(r.get(2), Datum::Float(25.0));
    assert_eq!(r.get(3), Datum::Timestamp(TS + 1));
    assert_eq!(r.get(4), Datum::Str("Apple"));
    assert!(out.row(1).iter().all(|d| d.is_null()));

    let p = Expr::compile_predicate(&sp("auction % 10 = 0 AND flag"), &schema()).unwrap();
    assert!(p.eval_bool(input.row(0)));
    assert!(!p.eval_bool(null_row().row(0)), "NULL counts as false");
    assert_eq!(compile("ts + 5").eval_int(input.row(0)), Some(TS + 5));
    assert_eq!(compile("auction").eval_float(input.row(0)), Some(1000.0));
    assert!(compile("price + 1").is_null(null_row().row(0)));
}

#[test]
fn string_results_borrow_when_possible() {
    let b = full_row();
    for text in ["channel", "substring(channel, 2)", "trim(channel)", "lower('abc')", "'lit'"] {
        let e = compile(text);
        assert!(matches!(e.eval(b.row(0)), Value::Datum(Datum::Str(_))), "{text}");
    }
    assert!(matches!(compile("lower(channel)").eval(b.row(0)), Value::Owned(_)));
}

// ---- diagnostics ----

#[test]
fn unknown_field_with_suggestion() {
    let d = error("pricee * 2");
    assert_eq!(d.message, "unknown field `pricee` in `pricee * 2`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `price`?"));
    assert_eq!(d.span, Some(Span::new(5, 12)));

    let d = error("auction + pricee");
    assert_eq!(d.span, Some(Span::new(5, 22)), "points at the field, not the expression");

    let d = error("zzz > 1");
    assert_eq!(d.hint.as_deref(), Some("available fields: auction, price, channel, ts, flag, bidder, My Col"));

    let d = error("channel = \"web\"");
    assert_eq!(d.message, "unknown field `web` in `channel = \"web\"`");
    assert_eq!(d.hint.as_deref(), Some("double quotes name a field; write text in single quotes: 'web'"));
}

#[test]
fn several_problems_are_reported_together() {
    let all = errors("pricee + chanel * 2 > lowr(channel)");
    let messages: Vec<&str> = all.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown field `pricee` in `pricee + chanel * 2 > lowr(channel)`",
            "unknown field `chanel` in `pricee + chanel * 2 > lowr(channel)`",
            "unknown function `lowr`",
        ]
    );
    assert_eq!(all[1].span, Some(Span::new(5, 21)));
    assert_eq!(all[2].hint.as_deref(), Some("did you mean `lower`?"));
}

#[test]
fn type_errors() {
    let d = error("channel + 1");
    assert_eq!(d.message, "cannot apply `+` to string and int");
    assert_eq!(d.hint.as_deref(), Some("use `||` to join text"));
    assert_eq!(error("flag * 2").message, "cannot apply `*` to bool and int");
    assert_eq!(error("ts + ts").message, "cannot apply `+` to timestamp_ms and timestamp_ms");
    assert_eq!(error("-channel").message, "cannot apply `-` to string");
    assert_eq!(error("channel = 1").message, "cannot compare string and int");
    assert_eq!(error("flag > 1").message, "cannot compare bool and int");
    assert_eq!(error("auction AND flag").message, "`AND` needs boolean operands, but `auction` is int");
    assert_eq!(error("NOT channel").message, "`NOT` needs a boolean operand, but `channel` is string");
    assert_eq!(error("auction LIKE 'a%'").message, "`LIKE` needs text, but `auction` is int");
    assert_eq!(
        error("CASE WHEN flag THEN 1 ELSE 'x' END").message,
        "`CASE` branches have different types: int and string"
    );
    assert_eq!(error("CASE WHEN auction THEN 1 END").message, "`WHEN` needs a boolean condition, but `auction` is int");
    assert_eq!(error("auction IN (1, 'x')").message, "cannot compare int and string in `IN`");
    assert_eq!(
        error("coalesce(auction, channel)").message,
        "`coalesce` arguments have different types: int and string"
    );
    assert_eq!(error("lower(auction)").message, "`lower` needs a string argument, `auction` is int");
    assert_eq!(error("round(price, 1.5)").message, "`round` needs an int argument, `1.5` is float");
    assert_eq!(error("abs(channel)").message, "`abs` needs a numeric argument, `channel` is string");
}

#[test]
fn predicate_must_be_boolean() {
    let d = Expr::compile_predicate(&sp("auction * 2"), &schema()).unwrap_err().0;
    assert_eq!(d[0].message, "`where` must be a boolean expression, but `auction * 2` is int");
    assert_eq!(d[0].span, Some(Span::new(5, 12)));
    let d = Expr::compile_predicate_for("having", &sp("channel"), &schema()).unwrap_err().0;
    assert_eq!(d[0].message, "`having` must be a boolean expression, but `channel` is string");
}

#[test]
fn syntax_errors_point_into_the_file() {
    let d = error("price *");
    assert_eq!(d.message, "syntax error in `price *`: expected an expression after `*`");
    assert_eq!(d.span, Some(Span::new(5, 19)));
    let d = error("auction +\n  pricee");
    assert_eq!(d.span, Some(Span::new(6, 3)), "later lines keep their own column");
    let d = error("auction > 1 extra");
    assert_eq!(d.message, "syntax error in `auction > 1 extra`: unexpected `extra` after `1`");
    assert_eq!(d.span, Some(Span::new(5, 24)));
}

#[test]
fn function_and_literal_errors() {
    assert_eq!(error("lower(channel, 1)").message, "`lower` takes 1 argument, but got 2");
    assert_eq!(error("round()").message, "`round` takes 1 or 2 arguments, but got 0");
    assert_eq!(error("replace(channel)").message, "`replace` takes 3 arguments, but got 1");
    assert_eq!(error("coalesce()").message, "`coalesce` takes at least 1 argument, but got 0");
    let d = error("frobnicate(auction)");
    assert_eq!(d.message, "unknown function `frobnicate`");
    assert!(d.hint.as_deref().is_some_and(|h| h.starts_with("available functions: abs, ceil")));
    assert_eq!(error("max(price) > 1").message, "aggregate function `max` is not allowed here");
    assert_eq!(error("lower(*)").message, "`*` is not an argument of `lower`: only `count(*)` takes it");
    assert_eq!(error("9223372036854775808").message, "integer literal `9223372036854775808` is out of range");
    assert_eq!(error("CAST('abc' AS int)").message, "cannot cast `'abc'` to int");
    assert_eq!(error("CAST(flag AS timestamp)").message, "cannot cast bool to timestamp_ms");
    assert_eq!(error("CAST(auction AS blob)").message, "cannot cast to `BLOB`");
    assert_eq!(error("TIMESTAMP 'noon'").message, "cannot cast `TIMESTAMP 'noon'` to timestamp_ms");
    assert_eq!(error("NULL").message, "`NULL` has no type");
    assert_eq!(error("t.auction").message, "qualified names like `t.auction` are not supported in `t.auction`");
    assert_eq!(error("channel LIKE 'x!' ESCAPE '!'").message, "the LIKE pattern `x!` ends with its escape character");
    assert!(error("auction IN (SELECT 1)").message.ends_with("is not supported in `auction IN (SELECT 1)`"));
    assert!(error("ts + INTERVAL '1' MONTH").message.starts_with("unsupported interval"));
}

#[test]
fn values_are_send_sync_clone() {
    fn check<T: Clone + Send + Sync>() {}
    check::<Expr>();
    check::<KeyExprs>();
    check::<AggregateCall>();
    check::<Accumulator>();
}

// ---- properties ----

fn int_schema() -> Schema {
    Schema::new(vec![
        Field::new("a", DataType::Int),
        Field::new("b", DataType::Int),
        Field::new("c", DataType::Int),
        Field::new("x", DataType::Float),
        Field::new("y", DataType::Float),
        Field::new("z", DataType::Float),
    ])
}

fn eval_nums(text: &str, ints: [i64; 3], floats: [f64; 3]) -> OwnedDatum {
    let e = Expr::compile(&sp(text), &int_schema()).unwrap_or_else(|d| panic!("{text}: {d:?}"));
    let mut b = Batch::new(6);
    b.push_row(&[
        Datum::Int(ints[0]),
        Datum::Int(ints[1]),
        Datum::Int(ints[2]),
        Datum::Float(floats[0]),
        Datum::Float(floats[1]),
        Datum::Float(floats[2]),
    ]);
    e.eval(b.row(0)).into_owned_datum()
}

fn opt_int(v: Option<i64>) -> OwnedDatum {
    v.map_or(N, I)
}

proptest! {
    #[test]
    fn int_arithmetic_matches_rust(a in any::<i64>(), b in any::<i64>(), c in -3i64..3) {
        let ints = [a, b, c];
        let f = [0.0; 3];
        prop_assert_eq!(eval_nums("a + b * c", ints, f), I(a.wrapping_add(b.wrapping_mul(c))));
        prop_assert_eq!(eval_nums("(a - b) * 3", ints, f), I(a.wrapping_sub(b).wrapping_mul(3)));
        prop_assert_eq!(eval_nums("a / c", ints, f), opt_int((c != 0).then(|| a.wrapping_div(c))));
        prop_assert_eq!(eval_nums("a % c", ints, f), opt_int((c != 0).then(|| a.wrapping_rem(c))));
        prop_assert_eq!(eval_nums("-a + abs(c)", ints, f), I(a.wrapping_neg().wrapping_add(c.abs())));
        prop_assert_eq!(eval_nums("a < b", ints, f), B(a < b));
        prop_assert_eq!(eval_nums("a >= b AND b <> c", ints, f), B(a >= b && b != c));
        prop_assert_eq!(eval_nums("c BETWEEN a AND b", ints, f), B(a <= c && c <= b));
        prop_assert_eq!(eval_nums("greatest(a, b, c)", ints, f), I(a.max(b).max(c)));
        prop_assert_eq!(eval_nums("CASE WHEN a > b THEN a ELSE b END", ints, f), I(a.max(b)));
    }

    #[test]
    fn float_arithmetic_matches_rust(x in -1e9f64..1e9, y in -1e9f64..1e9, z in -1e3f64..1e3, a in -1000i64..1000) {
        let ints = [a, 0, 0];
        let f = [x, y, z];
        prop_assert_eq!(eval_nums("x + y * z", ints, f), F(x + y * z));
        prop_assert_eq!(eval_nums("x * 0.908 - a", ints, f), F(x * 0.908 - a as f64));
        prop_assert_eq!(eval_nums("a + x", ints, f), F(a as f64 + x));
        prop_assert_eq!(eval_nums("x / z", ints, f), if z == 0.0 { N } else { F(x / z) });
        prop_assert_eq!(eval_nums("x < y", ints, f), B(x < y));
        prop_assert_eq!(eval_nums("a <= x", ints, f), B((a as f64) <= x));
        prop_assert_eq!(eval_nums("round(x, 2)", ints, f), F((x * 100.0).round() / 100.0));
    }

    #[test]
    fn int_text_round_trips(a in any::<i64>()) {
        prop_assert_eq!(eval_nums("CAST(CAST(a AS string) AS int)", [a, 0, 0], [0.0; 3]), I(a));
    }
}

// ---- keys ----

fn keys(list: &[&str]) -> KeyExprs {
    let specs: Vec<Spanned<String>> = list.iter().map(|k| sp(k)).collect();
    KeyExprs::compile(&specs, &schema()).unwrap_or_else(|d| panic!("{d:?}"))
}

fn row7(auction: i64, channel: &str) -> [Datum<'_>; 7] {
    [
        Datum::Int(auction),
        Datum::Float(1.0),
        Datum::Str(channel),
        Datum::Timestamp(0),
        Datum::Bool(false),
        Datum::Int(0),
        Datum::Int(0),
    ]
}

#[test]
fn equal_keys_from_different_batches_hash_equal() {
    let k = keys(&["auction", "lower(channel)"]);
    let mut a = Batch::new(7);
    a.push_row(&row7(1, "padding text that shifts the arena"));
    a.push_row(&row7(42, "Web"));
    let mut b = Batch::new(7);
    b.push_row(&row7(42, "WEB"));
    let (ra, rb) = (a.row(1), b.row(0));
    assert_eq!(k.hash(ra), k.hash(rb));
    assert_eq!(k.key_hash(ra), k.hash(ra));
    assert_ne!(k.hash(ra), k.hash(a.row(0)));

    let owned = k.to_owned_key(ra);
    assert_eq!(&*owned, &[I(42), s("web")]);
    assert!(k.matches(rb, &owned));
    assert!(!k.matches(a.row(0), &owned));
    assert!(!k.matches(rb, &owned[..1]));
    assert_eq!(KeyExprs::hash_owned(&owned), k.hash(rb));

    assert_eq!(k.fields(), vec![Field::new("auction", DataType::Int), Field::new("lower(channel)", DataType::String)]);
    let mut out = Batch::new(2);
    k.push_into(rb, &mut out);
    assert_eq!(out.row(0).get(1), Datum::Str("web"));
}

#[test]
fn bare_field_keys_hash_like_field_keys() {
    let k = keys(&["auction", "channel"]);
    let b = full_row();
    assert_eq!(k.hash(b.row(0)), FieldKeys(vec![0, 2]).key_hash(b.row(0)));
    let n = null_row();
    assert!(k.matches(n.row(0), &k.to_owned_key(n.row(0))), "NULL keys group together");
    assert_eq!(k.len(), 2);
}

#[test]
fn float_keys_treat_zero_signs_alike() {
    let k = keys(&["price * 1"]);
    let mut b = Batch::new(7);
    let mut r = row7(0, "");
    r[1] = Datum::Float(0.0);
    b.push_row(&r);
    r[1] = Datum::Float(-0.0);
    b.push_row(&r);
    assert_eq!(k.hash(b.row(0)), k.hash(b.row(1)));
    assert!(k.matches(b.row(1), &k.to_owned_key(b.row(0))));
}

#[test]
fn key_errors_are_collected() {
    let specs = [sp("auctoin"), sp("channel"), sp("lowr(channel)")];
    let d = KeyExprs::compile(&specs, &schema()).unwrap_err().0;
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].hint.as_deref(), Some("did you mean `auction`?"));
}

// ---- aggregates ----

/// auction, price, channel, ts, flag.
type AggRow<'a> = (Option<i64>, Option<f64>, Option<&'a str>, i64, Option<bool>);

/// auction, price, channel, ts, flag over five rows with NULLs.
fn agg_batch() -> Batch {
    let rows: [AggRow<'_>; 5] = [
        (Some(1), Some(10.0), Some("b"), 5, Some(true)),
        (Some(2), None, Some("a"), 3, None),
        (Some(2), Some(30.0), None, 9, Some(false)),
        (None, Some(20.0), Some("c"), 1, Some(true)),
        (Some(3), None, Some("a"), 4, None),
    ];
    let mut b = Batch::new(7);
    for (a, p, c, t, f) in rows {
        b.push_row(&[
            a.map_or(Datum::Null, Datum::Int),
            p.map_or(Datum::Null, Datum::Float),
            c.map_or(Datum::Null, Datum::Str),
            Datum::Timestamp(t),
            f.map_or(Datum::Null, Datum::Bool),
            Datum::Null,
            Datum::Null,
        ]);
    }
    b
}

fn agg(text: &str) -> AggregateCall {
    AggregateCall::compile(&sp(text), &schema()).unwrap_or_else(|d| panic!("`{text}`: {d:?}"))
}

fn aggregate(text: &str, b: &Batch) -> (OwnedDatum, DataType) {
    let call = agg(text);
    let mut acc = call.new_accumulator();
    b.rows().for_each(|r| call.update(&mut acc, r));
    (call.owned_result(&acc), call.output_type())
}

#[test]
fn aggregates_over_a_batch() {
    let b = agg_batch();
    let cases: Vec<(&str, OwnedDatum, DataType)> = vec![
        ("count(*)", I(5), DataType::Int),
        ("COUNT(price)", I(3), DataType::Int),
        ("count(distinct channel)", I(3), DataType::Int),
        ("count(distinct auction)", I(3), DataType::Int),
        ("count(distinct flag)", I(2), DataType::Int),
        ("count(distinct price)", I(3), DataType::Int),
        ("sum(price)", F(60.0), DataType::Float),
        ("sum(auction)", I(8), DataType::Int),
        ("sum(auction * 2)", I(16), DataType::Int),
        ("avg(price)", F(20.0), DataType::Float),
        ("avg(auction)", F(2.0), DataType::Float),
        ("min(price)", F(10.0), DataType::Float),
        ("max(price)", F(30.0), DataType::Float),
        ("min(channel)", s("a"), DataType::String),
        ("max(channel)", s("c"), DataType::String),
        ("max(upper(channel))", s("C"), DataType::String),
        ("min(ts)", T(1), DataType::Timestamp),
        ("max(ts)", T(9), DataType::Timestamp),
        ("min(flag)", B(false), DataType::Bool),
        ("first(channel)", s("b"), DataType::String),
        ("last(channel)", s("a"), DataType::String),
        ("first_value(price)", F(10.0), DataType::Float),
        ("last(price)", F(20.0), DataType::Float),
        ("last(auction)", I(3), DataType::Int),
        ("(max(auction))", I(3), DataType::Int),
    ];
    for (text, want, ty) in cases {
        assert_eq!(aggregate(text, &b), (want, ty), "{text}");
    }
}

#[test]
fn empty_and_null_only_groups() {
    let empty = Batch::new(7);
    assert_eq!(aggregate("count(*)", &empty).0, I(0));
    assert_eq!(aggregate("count(price)", &empty).0, I(0));
    assert_eq!(aggregate("count(distinct price)", &empty).0, I(0));
    for text in ["sum(price)", "sum(auction)", "avg(price)", "min(channel)", "max(ts)", "first(flag)", "last(price)"] {
        assert_eq!(aggregate(text, &empty).0, N, "{text}");
        assert_eq!(aggregate(text, &null_row()).0, N, "{text} over NULLs");
    }
    assert_eq!(aggregate("count(price)", &null_row()).0, I(0));
    assert_eq!(aggregate("count(*)", &null_row()).0, I(1));
}

#[test]
fn merging_partial_accumulators_equals_one_pass() {
    let b = agg_batch();
    for text in [
        "count(*)",
        "count(distinct channel)",
        "sum(price)",
        "avg(auction)",
        "min(channel)",
        "max(price)",
        "first(channel)",
        "last(channel)",
        "last(price)",
    ] {
        let call = agg(text);
        let (mut left, mut right) = (call.new_accumulator(), call.new_accumulator());
        b.rows().take(2).for_each(|r| call.update(&mut left, r));
        b.rows().skip(2).for_each(|r| call.update(&mut right, r));
        call.merge(&mut left, &right);
        assert_eq!(call.owned_result(&left), aggregate(text, &b).0, "{text}");
    }
}

#[test]
fn accumulators_survive_serde() {
    let b = agg_batch();
    for text in [
        "count(*)",
        "count(distinct channel)",
        "count(distinct auction)",
        "sum(price)",
        "sum(auction)",
        "avg(price)",
        "max(channel)",
        "min(ts)",
        "first(flag)",
        "last(price)",
    ] {
        let call = agg(text);
        let mut acc = call.new_accumulator();
        b.rows().for_each(|r| call.update(&mut acc, r));
        let json = serde_json::to_string(&acc).unwrap();
        let back: Accumulator = serde_json::from_str(&json).unwrap();
        assert_eq!(back, acc, "{text}: {json}");
    }
}

#[test]
fn numeric_accumulators_are_small() {
    assert!(std::mem::size_of::<Accumulator>() <= 40, "{}", std::mem::size_of::<Accumulator>());
}

#[test]
fn push_result_appends_fields() {
    let b = agg_batch();
    let calls: Vec<AggregateCall> =
        ["count(*)", "max(channel)", "sum(price)", "max(ts)"].into_iter().map(agg).collect();
    let mut accs: Vec<Accumulator> = calls.iter().map(AggregateCall::new_accumulator).collect();
    for r in b.rows() {
        calls.iter().zip(accs.iter_mut()).for_each(|(c, a)| c.update(a, r));
    }
    let mut out = Batch::new(calls.len());
    calls.iter().zip(&accs).for_each(|(c, a)| c.push_result(a, &mut out));
    assert_eq!(
        out.row(0).iter().collect::<Vec<_>>(),
        [Datum::Int(5), Datum::Str("c"), Datum::Float(60.0), Datum::Timestamp(9)]
    );
    assert_eq!(calls[1].name(), "max");
    assert_eq!(calls[1].text(), "max(channel)");
}

fn agg_error(text: &str) -> Diagnostic {
    let mut d = AggregateCall::compile(&sp(text), &schema()).map(|c| c.text().to_owned()).unwrap_err().0;
    assert_eq!(d.len(), 1, "{d:?}");
    d.remove(0)
}

#[test]
fn aggregate_errors() {
    let d = agg_error("mx(price)");
    assert_eq!(d.to_string(), "5:12: unknown aggregate function `mx` (did you mean `max`?)");
    let d = agg_error("sum(channel)");
    assert_eq!(d.message, "`sum` needs a numeric argument, `channel` is string");
    assert_eq!(d.span, Some(Span::new(5, 16)));
    assert_eq!(agg_error("avg(flag)").message, "`avg` needs a numeric argument, `flag` is bool");
    assert_eq!(agg_error("price").message, "`price` is not an aggregate: write e.g. `max(price)`");
    assert_eq!(
        agg_error("max(price) + 1").message,
        "`max(price) + 1` is not an aggregate: write a single call such as `count(*)` or `max(price)`"
    );
    let d = agg_error("lower(channel)");
    assert_eq!(d.message, "`lower` is not an aggregate function");
    assert_eq!(agg_error("sum(*)").message, "`*` is only allowed in `count(*)`, not in `sum(*)`");
    assert_eq!(agg_error("max(price, auction)").message, "`max` takes 1 argument, but got 2");
    assert_eq!(agg_error("count()").message, "`count` takes 1 argument, but got 0");
    assert_eq!(agg_error("max(pricee)").hint.as_deref(), Some("did you mean `price`?"));
    assert_eq!(agg_error("max(max(price))").message, "aggregate function `max` is not allowed here");
    assert_eq!(
        agg_error("sum(distinct price)").message,
        "DISTINCT is only supported in `count(distinct ...)`, not in `sum`"
    );
    assert_eq!(agg_error("max(NULL)").message, "`max(NULL)` has no type: give NULL one, e.g. `CAST(NULL AS int)`");
    assert_eq!(agg_error("sum(price) FILTER (WHERE flag)").message, "FILTER is not supported in `sum(...)`");
}

#[test]
#[ignore = "timing smoke test: cargo test --release -p eddy --lib expr::tests::throughput -- --ignored --nocapture"]
fn throughput() {
    let mut b = Batch::with_capacity(7, 4096, 4096 * 8);
    for i in 0..4096 {
        b.push_row(&row7(i, if i % 3 == 0 { "Apple" } else { "web" }));
    }
    let cases =
        ["auction % 123 = 0", "price * 0.908", "auction > 100 AND channel = 'web'", "lower(channel)", "auction"];
    for text in cases {
        let e = compile(text);
        let mut out = Batch::with_capacity(1, 4096, 4096 * 8);
        let start = std::time::Instant::now();
        let rounds = 500;
        let mut hits = 0usize;
        for _ in 0..rounds {
            out.clear();
            for r in b.rows() {
                if e.data_type() == DataType::Bool {
                    hits += usize::from(e.eval_bool(r));
                } else {
                    e.push_into(r, &mut out);
                }
            }
        }
        let per_sec = (rounds * b.len()) as f64 / start.elapsed().as_secs_f64();
        println!("{text:40} {:>8.1} M rows/s ({hits})", per_sec / 1e6);
    }
    let k = keys(&["auction"]);
    let k2 = keys(&["auction", "lower(channel)"]);
    for (name, k) in [("key auction", &k), ("key auction, lower(channel)", &k2)] {
        let start = std::time::Instant::now();
        let mut acc = 0u64;
        for _ in 0..500 {
            for r in b.rows() {
                acc = acc.wrapping_add(k.hash(r));
            }
        }
        let per_sec = (500 * b.len()) as f64 / start.elapsed().as_secs_f64();
        println!("{name:40} {:>8.1} M rows/s ({})", per_sec / 1e6, acc % 7);
    }
    let call = agg("max(price)");
    let mut accs = call.new_accumulator();
    let start = std::time::Instant::now();
    for _ in 0..500 {
        b.rows().for_each(|r| call.update(&mut accs, r));
    }
    let per_sec = (500 * b.len()) as f64 / start.elapsed().as_secs_f64();
    println!("{:40} {:>8.1} M rows/s", "max(price) update", per_sec / 1e6);
}
