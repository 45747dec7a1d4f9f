//! Tests of the `generator` source: determinism across parallelism, distributions, rate limiting.
use super::*;
use crate::connectors::test_util::{ctx, task};
use eddy_api::value::Datum;
use eddy_api::Span;

fn config(kind: GeneratorKind, count: Option<u64>) -> GeneratorConfig {
    GeneratorConfig { kind, count, rate: None, seed: 42, start_time_ms: None, keys: None }
}

fn plan(cfg: GeneratorConfig) -> GeneratorBuilder {
    GeneratorBuilder::plan(cfg, &ctx("gen", 1, &[])).unwrap()
}

fn all_records(b: &GeneratorBuilder, p: usize, max_rows: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for s in 0..p {
        let mut src = b.instance(&task(s, p));
        let mut out = Batch::new(b.output_schema().len());
        loop {
            let poll = src.poll(&mut out, max_rows).unwrap();
            assert!(out.len() <= max_rows);
            rows.extend(out.rows().map(|r| format!("{r:?}")));
            out.clear();
            if poll == SourcePoll::Finished {
                assert_eq!(src.progress().done, src.progress().total.unwrap());
                break;
            }
        }
    }
    rows
}

#[test]
fn same_records_at_every_parallelism() {
    for kind in [GeneratorKind::Bids, GeneratorKind::Sequence] {
        let b = plan(config(kind, Some(1001)));
        assert!(b.bounded());
        let one = all_records(&b, 1, 1024);
        assert_eq!(one.len(), 1001);
        assert_eq!(one, all_records(&b, 1, 7), "batching does not matter");
        for p in 2..=5 {
            let mut got = all_records(&b, p, 100);
            got.sort();
            let mut want = one.clone();
            want.sort();
            assert_eq!(got, want, "{kind:?} p={p}");
        }
        let mut other = config(kind, Some(1001));
        other.seed = 7;
        assert_ne!(all_records(&plan(other), 1, 1024), one, "the seed matters");
    }
}

#[test]
fn bids_look_like_the_bench_generator() {
    let b = plan(config(GeneratorKind::Bids, Some(20_000)));
    assert_eq!(
        b.output_schema().to_string(),
        "{auction: int, bidder: int, price: int, channel: string, url: string, date_time: timestamp_ms, extra: string}"
    );
    let mut src = b.instance(&task(0, 1));
    let mut out = Batch::new(7);
    while src.poll(&mut out, 4096).unwrap() != SourcePoll::Finished {}
    assert_eq!(out.len(), 20_000);
    let (mut late, mut big_channels) = (0, 0);
    for (i, r) in out.rows().enumerate() {
        let i = i as i64;
        let price = r.int(2).unwrap();
        assert!((100..=1_000_000).contains(&price), "{price}");
        let ts = r.int(5).unwrap();
        assert!(matches!(r.get(5), Datum::Timestamp(_)));
        assert!(ts <= bids::BASE_MS + i && ts >= bids::BASE_MS + i - 2000);
        late += i32::from(ts < bids::BASE_MS + i);
        let channel = r.str(3).unwrap();
        big_channels += i32::from(["Google", "Facebook", "Baidu", "Apple"].contains(&channel));
        assert!(r.str(4).unwrap().starts_with("https://www.nexmark.com/"));
        let extra = r.str(6).unwrap().len();
        assert!((16..=40).contains(&extra));
        assert!(r.int(0).unwrap() >= 900 && r.int(1).unwrap() >= 0);
    }
    // ~10% late, ~90% in the four main channels.
    assert!((1500..2500).contains(&late), "{late}");
    assert!((17_500..18_500).contains(&big_channels), "{big_channels}");
}

#[test]
fn sequence_ids_and_keys() {
    let mut cfg = config(GeneratorKind::Sequence, Some(500));
    cfg.keys = Some(Spanned::new(Span::new(1, 1), 10));
    let b = plan(cfg);
    let mut ids = Vec::new();
    for s in 0..3 {
        let mut src = b.instance(&task(s, 3));
        let mut out = Batch::new(3);
        while src.poll(&mut out, 64).unwrap() != SourcePoll::Finished {}
        for r in out.rows() {
            ids.push(r.int(0).unwrap());
            assert!((0..10).contains(&r.int(1).unwrap()));
            assert!((0..1000).contains(&r.int(2).unwrap()));
        }
    }
    ids.sort();
    assert_eq!(ids, (0..500).collect::<Vec<_>>());
}

#[test]
fn unbounded_without_count() {
    let b = plan(config(GeneratorKind::Sequence, None));
    assert!(!b.bounded());
    let mut src = b.instance(&task(1, 2));
    let mut out = Batch::new(3);
    for _ in 0..3 {
        assert_eq!(src.poll(&mut out, 10).unwrap(), SourcePoll::Ready);
    }
    assert_eq!(out.len(), 30);
    assert_eq!(out.row(29).int(0), Some(59));
    assert_eq!(src.progress().total, None);
}

#[test]
fn rate_limit_returns_idle() {
    let mut cfg = config(GeneratorKind::Sequence, Some(1000));
    cfg.rate = Some(Spanned::new(Span::new(1, 1), 100.0));
    let b = plan(cfg);
    // Two subtasks: 50 records per second each.
    let mut src = b.instance(&task(0, 2));
    let mut out = Batch::new(3);
    let t0 = Instant::now();
    let SourcePoll::Idle(wait) = src.poll_at(&mut out, 1024, t0).unwrap() else { panic!("expected Idle") };
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(20), "{wait:?}");
    assert!(out.is_empty());
    assert_eq!(src.poll_at(&mut out, 1024, t0 + Duration::from_millis(100)).unwrap(), SourcePoll::Ready);
    assert_eq!(out.len(), 5);
    assert!(matches!(src.poll_at(&mut out, 1024, t0 + Duration::from_millis(101)).unwrap(), SourcePoll::Idle(_)));
    // After a long pause only a bounded burst is released (one second's worth here).
    assert_eq!(src.poll_at(&mut out, 1024, t0 + Duration::from_secs(60)).unwrap(), SourcePoll::Ready);
    assert_eq!(out.len(), 55);
    // max_rows still applies.
    assert_eq!(src.poll_at(&mut out, 3, t0 + Duration::from_secs(61)).unwrap(), SourcePoll::Ready);
    assert_eq!(out.len(), 58);
}

#[test]
fn plan_diagnostics() {
    let mut cfg = config(GeneratorKind::Bids, None);
    cfg.rate = Some(Spanned::new(Span::new(3, 7), -1.0));
    cfg.keys = Some(Spanned::new(Span::new(4, 7), 5));
    let d = GeneratorBuilder::plan(cfg, &ctx("gen", 1, &[])).unwrap_err().0;
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "generator source `gen`: `rate` must be a positive number of records per second, got -1",
            "generator source `gen`: `keys` only applies to kind sequence",
        ]
    );
    assert_eq!(d[0].span, Some(Span::new(3, 7)));
    let mut cfg = config(GeneratorKind::Sequence, None);
    cfg.keys = Some(Spanned::new(Span::new(4, 7), 0));
    cfg.start_time_ms = Some(Spanned::new(Span::new(5, 7), 0));
    let d = GeneratorBuilder::plan(cfg, &ctx("gen", 1, &[])).unwrap_err().0;
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "generator source `gen`: `start_time_ms` only applies to kind bids",
            "generator source `gen`: `keys` must be at least 1"
        ]
    );
}

/// One run at parallelism `p`, restored from `positions` (`None`: fresh): each subtask polls `polls`
/// times (`None`: to the end), then a checkpoint takes its position and it polls once more (lost in the
/// failure that follows). Returns the rows before the checkpoint per subtask, and the positions.
fn run(
    b: &GeneratorBuilder,
    p: usize,
    positions: Option<&[Vec<u8>]>,
    polls: Option<usize>,
    max_rows: usize,
) -> (Vec<Vec<String>>, Vec<Vec<u8>>) {
    let (mut rows, mut taken) = (Vec::new(), Vec::new());
    for s in 0..p {
        let mut src = b.instance(&task(s, p));
        src.open(&task(s, p)).unwrap();
        if let Some(pos) = positions {
            src.restore_position(pos).unwrap();
        }
        let mut out = Batch::new(b.output_schema().len());
        let mut n = 0;
        while polls != Some(n) {
            n += 1;
            if src.poll(&mut out, max_rows).unwrap() == SourcePoll::Finished {
                assert_eq!(Some(src.progress().done), src.progress().total);
                break;
            }
        }
        rows.push(out.rows().map(|r| format!("{r:?}")).collect());
        taken.push(src.snapshot_position(1).unwrap().unwrap());
        src.poll(&mut Batch::new(b.output_schema().len()), max_rows).unwrap();
    }
    (rows, taken)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn positions_resume_at_any_parallelism() {
    for kind in [GeneratorKind::Bids, GeneratorKind::Sequence] {
        let b = plan(config(kind, Some(1001)));
        let expected = sorted(all_records(&b, 1, 1024));
        assert!(expected.windows(2).all(|w| w[0] != w[1]), "distinct records");
        for chain in [&[2, 3][..], &[3, 1], &[1, 2], &[2, 3, 1], &[5, 128, 7]] {
            for (polls, max_rows) in [(0, 10), (1, 7), (3, 50), (2, 2000)] {
                let mut got = Vec::new();
                let mut positions: Option<Vec<Vec<u8>>> = None;
                for (i, &p) in chain.iter().enumerate() {
                    let last = i + 1 == chain.len();
                    let (rows, pos) = run(&b, p, positions.as_deref(), (!last).then_some(polls), max_rows);
                    got.extend(rows.into_iter().flatten());
                    positions = Some(pos);
                }
                assert_eq!(sorted(got), expected, "{kind:?} chain {chain:?}, {polls} polls of {max_rows}");
            }
        }
    }
}

#[test]
fn a_restore_at_the_same_parallelism_continues_each_subtask_in_order() {
    let b = plan(config(GeneratorKind::Bids, Some(3000)));
    let (whole, _) = run(&b, 3, None, None, 64);
    let (before, positions) = run(&b, 3, None, Some(5), 37);
    let (after, _) = run(&b, 3, Some(&positions), None, 64);
    for s in 0..3 {
        let joined: Vec<String> = before[s].iter().chain(&after[s]).cloned().collect();
        assert_eq!(joined, whole[s], "subtask {s}");
    }
}

#[test]
fn unbounded_positions_continue_the_sequence() {
    let b = plan(config(GeneratorKind::Sequence, None));
    let (before, positions) = run(&b, 2, None, Some(3), 10);
    let (after, _) = run(&b, 3, Some(&positions), Some(20), 10);
    let ids = |rows: Vec<Vec<String>>| -> Vec<i64> {
        rows.into_iter()
            .flatten()
            .map(|r| r.trim_start_matches("[Int(").split(')').next().unwrap().parse().unwrap())
            .collect()
    };
    let mut all: Vec<i64> = ids(before).into_iter().chain(ids(after)).collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "no record twice");
    assert!(all.starts_with(&(0..500).collect::<Vec<_>>()), "no record skipped");
}

#[test]
fn fresh_runs_make_the_records_s_plus_k_p_in_order() {
    let b = plan(config(GeneratorKind::Sequence, Some(1000)));
    for p in [1, 3, 5, 7, 100] {
        for s in [0, p / 2, p - 1] {
            let (rows, _) = run(&b, p, None, None, 64);
            let ids: Vec<String> = (s..1000).step_by(p).map(|i| format!("[Int({i}), ")).collect();
            assert_eq!(rows[s].len(), ids.len(), "p={p} s={s}: an even share");
            assert!(rows[s].iter().zip(&ids).all(|(r, id)| r.starts_with(id.as_str())), "p={p} s={s}");
        }
    }
}

#[test]
fn bad_positions_are_refused() {
    let b = plan(config(GeneratorKind::Sequence, Some(10)));
    let (_, mut positions) = run(&b, 2, None, Some(1), 3);
    let (_, other) = run(&b, 3, None, Some(1), 3);
    positions.push(other[0].clone());
    let err = b.instance(&task(0, 2)).restore_position(&positions).unwrap_err().to_string();
    assert_eq!(
        err,
        "generator source `gen`: cannot restore: the subtasks of the checkpoint disagree on the logical splits \
         (128 and 129)"
    );
    let err = b.instance(&task(0, 1)).restore_position(&[b"\xc1".to_vec()]).unwrap_err().to_string();
    assert!(err.starts_with("cannot decode the position of generator source `gen` from the snapshot"), "{err}");
}
