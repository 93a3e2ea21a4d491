//! The cost model against what cases really cost. A small seeded generator writes cases of
//! nested repeats and threads whose figures it also counts itself, in u128: the checker must
//! accept exactly those within the limits, refuse the others at once (before expanding
//! anything), and each case it accepts must check and run on the host within a budget its
//! figures set, running exactly the steps and thread operations the model counted.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use harness::{
    case::{
        self,
        limits::{MAX_SLOW_STEPS, MAX_STEPS, MAX_THREAD_OPERATIONS, MAX_THREADS_AT_ONCE},
    },
    exec,
    results::Actual,
};

use crate::requirements;

use requirements::Requirement;

/// How many cases the test writes: about 60 accepted ones, the largest near the limit of
/// steps, check and run in a few seconds.
const CASES: u64 = 100;

/// Repeat counts: ones that nest into up to the limit of steps, and ones past every limit.
const TIMES: &[u128] = &[1, 3, 10, 40, 300, 2_000, 1_000_000, 4_294_967_295];
const THREAD_COUNTS: &[u128] = &[1, 2, 4, 40, 4_294_967_295];
const THREAD_REPEATS: &[u128] = &[1, 10, 100, 300, 4_294_967_295];

/// Checking may take this long at most, plus this much per step and per thread operation
/// (a debug build; a release build takes about a tenth).
const CHECK_BASE: Duration = Duration::from_secs(1);
const CHECK_PER_STEP: Duration = Duration::from_micros(200);
const CHECK_PER_OPERATION: Duration = Duration::from_micros(50);
/// A refusal reads the case and counts, nothing more.
const REFUSAL: Duration = Duration::from_millis(500);
/// Running may take this long at most, plus this much per step, per thread operation and
/// per slow step (threads start up to 64 threads).
const RUN_BASE: Duration = Duration::from_secs(1);
const RUN_PER_STEP: Duration = Duration::from_micros(500);
const RUN_PER_OPERATION: Duration = Duration::from_micros(50);
const RUN_PER_SLOW_STEP: Duration = Duration::from_millis(20);

/// xorshift64*: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The figures of a generated case, as the generator counts them.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    steps: u128,
    thread_operations: u128,
    slow_steps: u128,
    threads_at_once: u128,
}

impl Figures {
    fn within_limits(&self) -> bool {
        self.steps <= u128::from(MAX_STEPS)
            && self.thread_operations <= u128::from(MAX_THREAD_OPERATIONS)
            && self.slow_steps <= u128::from(MAX_SLOW_STEPS)
            && self.threads_at_once <= u128::from(MAX_THREADS_AT_ONCE)
    }
}

/// Writes a case's steps; `runs`: how often each runs (the repeats around them).
struct Writer {
    rng: Rng,
    text: String,
    figures: Figures,
}

impl Writer {
    fn steps(&mut self, indent: usize, depth: usize, runs: u128) {
        for _ in 0..=self.rng.below(2) {
            self.step(indent, depth, runs);
        }
    }

    fn step(&mut self, indent: usize, depth: usize, runs: u128) {
        let pad = " ".repeat(indent);
        // `{i}` is only expanded inside a repeat.
        let value = if depth > 0 { "\"{i}\"" } else { "1" };
        // Leaves only at the deepest level; else as often a repeat or threads as a leaf.
        match self.rng.below(if depth < 3 { 8 } else { 3 }) {
            0 => self.line(&format!(
                "{pad}- update: {{ map: store, socket: s, value: {value} }}\n{pad}  expect: ok"
            )),
            1 => self.line(&format!(
                "{pad}- lookup: {{ map: store, socket: s }}\n{pad}  expect: {{ value: any }}"
            )),
            2 => self.line(&format!(
                "{pad}- delete: {{ map: store, socket: s }}\n{pad}  expect: ok"
            )),
            3..=5 => {
                let times = self.rng.pick(TIMES);
                self.line(&format!(
                    "{pad}- repeat:\n{pad}    times: {times}\n{pad}    steps:"
                ));
                self.steps(indent + 6, depth + 1, runs * times);
                return;
            }
            _ => {
                self.threads(&pad, runs);
                return;
            }
        }
        self.figures.steps += runs;
    }

    fn threads(&mut self, pad: &str, runs: u128) {
        self.line(&format!("{pad}- threads:"));
        let mut at_once = 0;
        let mut deletes = false;
        for _ in 0..=self.rng.below(2) {
            let (count, repeat) = (self.rng.pick(THREAD_COUNTS), self.rng.pick(THREAD_REPEATS));
            let delete = self.rng.below(2) == 0;
            let ops = if delete {
                "[ { update: { map: store, socket: s, value: 1 } }, { delete: { map: store, socket: s } } ]"
            } else {
                "[ { update: { map: store, socket: s, value: 1 } } ]"
            };
            self.line(&format!(
                "{pad}    - {{ count: {count}, repeat: {repeat}, steps: {ops} }}"
            ));
            at_once += count;
            deletes |= delete;
            self.figures.thread_operations += runs * count * repeat * (1 + u128::from(delete));
        }
        let delete_counts = if deletes {
            ", delete: { ok: any, ENOENT: any }"
        } else {
            ""
        };
        self.line(&format!(
            "{pad}  expect: {{ counts: {{ update: {{ ok: \"> 0\", EAGAIN: any }}{delete_counts} }} }}"
        ));
        self.figures.steps += runs;
        self.figures.slow_steps += runs;
        self.figures.threads_at_once = self.figures.threads_at_once.max(at_once);
    }

    fn line(&mut self, text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
    }
}

fn generate(seed: u64) -> (String, Figures) {
    let mut writer = Writer {
        rng: Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0xff51_afd7_ed55_8ccd) | 1),
        text: format!(
            "name: generated-{seed}\ndescription: a generated case\nmaps:\n  store: {{ value: u32 }}\nsockets:\n  s: {{ family: inet }}\nsteps:\n"
        ),
        figures: Figures::default(),
    };
    writer.steps(2, 0, 1);
    (writer.text, writer.figures)
}

#[test]
fn the_model_counts_what_runs_and_bounds_what_it_costs() {
    let host = match exec::preflight() {
        Ok((version, _)) => Some(version),
        Err(e) => {
            let requirement = if matches!(e, exec::InfraError::NotRoot { .. }) {
                Requirement::Root
            } else {
                Requirement::Bpf
            };
            requirements::missing(requirement, &format!("host runs left out: {e}"));
            None
        }
    };
    let (mut accepted, mut refused) = (0, 0);
    for seed in 0..CASES {
        let (text, figures) = generate(seed);
        let started = Instant::now();
        let parsed = case::parse(Path::new("generated.yaml"), &text);
        let checked_in = started.elapsed();
        let case = match parsed {
            Err(errors) => {
                refused += 1;
                assert!(
                    !figures.within_limits(),
                    "seed {seed}: refused within the limits ({figures:?}):\n{errors}\n{text}"
                );
                assert!(
                    errors.0.iter().all(|e| e.message.contains("more than the")),
                    "seed {seed}: refused for something else than a limit:\n{errors}\n{text}"
                );
                assert!(
                    checked_in < REFUSAL,
                    "seed {seed}: refusal took {checked_in:?}"
                );
                continue;
            }
            Ok(case) => case,
        };
        accepted += 1;
        assert!(
            figures.within_limits(),
            "seed {seed}: accepted past the limits ({figures:?})\n{text}"
        );
        let cost = case.cost;
        assert_eq!(u128::from(cost.steps), figures.steps, "seed {seed}\n{text}");
        assert_eq!(
            u128::from(cost.thread_operations),
            figures.thread_operations,
            "seed {seed}\n{text}"
        );
        assert_eq!(u128::from(cost.slow_steps), figures.slow_steps);
        let check_budget = CHECK_BASE
            + CHECK_PER_STEP.mul_f64(cost.steps as f64)
            + CHECK_PER_OPERATION.mul_f64(cost.thread_operations as f64);
        assert!(
            checked_in <= check_budget,
            "seed {seed}: checked in {checked_in:?}, more than {check_budget:?} ({cost:?})"
        );
        let Some(version) = host else { continue };
        let started = Instant::now();
        let result = exec::run_case(&case, version);
        let ran_in = started.elapsed();
        let run_budget = RUN_BASE
            + RUN_PER_STEP.mul_f64(cost.steps as f64)
            + RUN_PER_OPERATION.mul_f64(cost.thread_operations as f64)
            + RUN_PER_SLOW_STEP.mul_f64(cost.slow_steps as f64);
        assert!(
            ran_in <= run_budget,
            "seed {seed}: ran in {ran_in:?}, more than {run_budget:?} ({cost:?})"
        );
        let ran_steps = result
            .steps
            .iter()
            .filter(|s| !s.id.starts_with("setup."))
            .count();
        assert_eq!(
            ran_steps as u64, cost.steps,
            "seed {seed}: {:?}\n{text}",
            result.outcome
        );
        let operations: u64 = result
            .steps
            .iter()
            .filter_map(|s| match &s.actual {
                Actual::Counts { counts } => {
                    Some(counts.values().flat_map(|o| o.values()).sum::<u64>())
                }
                _ => None,
            })
            .sum();
        assert_eq!(operations, cost.thread_operations, "seed {seed}\n{text}");
    }
    eprintln!("{accepted} generated cases accepted, {refused} refused");
    // The generator must exercise both sides of the limits.
    assert!(
        accepted >= CASES / 4 && refused >= CASES / 4,
        "{accepted} accepted, {refused} refused"
    );
}
