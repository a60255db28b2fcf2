//! Every op-level conformance case on the Ascend backend, run through the test-only ACL
//! stand-in (a plumbing test, not Ascend hardware), against the CPU backend, bit for bit.
mod common;

use concord_conformance::cases::op_cases;
use concord_conformance::compare::compare;
use concord_conformance::rng::seed_of;
use concord_conformance::run_case;
use concord_ops::Support;

#[test]
fn every_op_case_is_bit_identical_to_the_cpu_backend() {
    let ascend = common::standin_backend();
    assert_eq!(ascend.info().name, "ascend");
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in op_cases() {
        if let Support::Unsupported(_) = ascend.supports(case.op.kind(), case.support_dtype) {
            continue;
        }
        let seed = seed_of(&case.name);
        let want = run_case(&*cpu, &case, seed);
        let got = run_case(&*ascend, &case, seed);
        ran += 1;
        match (want, got) {
            (Ok(want), Ok(got)) => {
                for ((w, g), o) in want.iter().zip(&got).zip(&case.outputs) {
                    let diff = compare(o.desc.dtype, w, g);
                    if !diff.is_exact() {
                        failures.push(format!("{}: {:?}", case.name, diff.first));
                    }
                }
            }
            (Err(w), Err(g)) if w == g => {}
            (w, g) => failures.push(format!(
                "{}: cpu {:?} vs ascend {:?}",
                case.name,
                w.err(),
                g.err()
            )),
        }
    }
    assert!(ran >= 30, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} op cases bit-identical on the ascend stand-in");
}
