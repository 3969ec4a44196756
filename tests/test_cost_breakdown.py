"""The sentences of ``benchmarks/cost_breakdown.py`` are computed from its measured seconds: checked on
made-up seconds whose every derived figure is known by hand."""
from benchmarks import cost_breakdown as breakdown


def test_findings_from_the_seconds():
    single = {"pairs": 80_000, "seconds": {"whole call": 5e-3, "four products": 2e-3,
                                           "elementwise geometry and coefficients": 1.6e-3}}
    batch = {"B": 1000, "seconds": {"batched call": 8e-3, "loop of single calls": 0.2,
                                    "its four products (stacked np.matmul)": 1e-3,
                                    "one elementwise pass over the pairs": 1e-4, **_floor(1e-3)}}
    one, many, floor = breakdown.findings(single, batch)
    # 5/2 = 2.50x; allowance (1.5 - 1) * 2 ms = 1.00 ms; 1.6 ms = 1.60x of it; 1.6e-3 / 8e4 = 20.0 ns; 3 ms beyond
    assert one == ("One instance: the call takes 2.50× its four products; the target 1.5× leaves 1.00 ms beyond "
                   "them, and the elementwise geometry and coefficients alone take 1.60 ms (1.60× that allowance; "
                   "20.0 ns per pair), of 3.00 ms beyond the products.")
    # 200 us per instance; 50x allows 4.00 us; 8 us (25.0x); products 1 us; (8 - 1) / 0.1 = 70 passes of 0.1 us;
    # (4 - 1) / 0.1 = 30 passes fit
    assert many == ("Batch: the loop takes 200 µs per instance, so 50× allows 4.00 µs; the batched call takes 8.00 µs "
                    "(25.0×), of which its products 1.00 µs and the rest the time of 70 elementwise passes over the "
                    "pairs (0.100 µs each); the allowance holds 30 such passes beside the products.")
    # floor 5 stages x 1 ms = 5 ms = 5.00 us per instance; 4 - 5 = -1: 1.00 us beyond the allowance
    assert floor == ("Floor: the field as two products with Z = [W; W*] and only the pair passes no assembly skips "
                     "(square root, arccos, row sum, range check) take 5.00 µs per instance; that is 1.00 µs beyond "
                     "the allowance before any other pass.")


def _floor(each: float) -> dict:
    """Made-up seconds for the floor's stages, ``each`` every one."""
    return {"two products with Z = [W; W*]": each, "square root pass": each, "arccos pass": each,
            "row sum pass": each, "range check (min and max)": each}


def test_floor_within_the_allowance():
    """A floor below the allowance: what remains, in microseconds and in passes of the measured kind."""
    single = {"pairs": 1, "seconds": {"whole call": 2.0, "four products": 1.0,
                                      "elementwise geometry and coefficients": 0.5}}
    batch = {"B": 1000, "seconds": {"batched call": 8e-3, "loop of single calls": 0.2,
                                    "its four products (stacked np.matmul)": 1e-3,
                                    "one elementwise pass over the pairs": 1e-4, **_floor(2e-4)}}
    # allowance 0.2 / 50 = 4 ms; floor 5 x 0.2 ms = 1 ms = 1.00 us per instance; 3 ms left = 3.00 us = 30 passes
    assert breakdown.findings(single, batch)[2] == (
        "Floor: the field as two products with Z = [W; W*] and only the pair passes no assembly skips (square root, "
        "arccos, row sum, range check) take 1.00 µs per instance; 3.00 µs of the allowance remain for every other "
        "pass (normalising the cosines, the sine's factors, the cores, the diagonal): 30 passes like the one above.")


def test_no_negative_allowance():
    """Products alone beyond the budget: the allowance holds no pass (not a negative number of them)."""
    single = {"pairs": 1, "seconds": {"whole call": 2.0, "four products": 1.0,
                                      "elementwise geometry and coefficients": 0.5}}
    batch = {"B": 1, "seconds": {"batched call": 1.0, "loop of single calls": 10.0,
                                 "its four products (stacked np.matmul)": 0.5, "one elementwise pass over the pairs": 0.1,
                                 **_floor(0.1)}}
    assert breakdown.findings(single, batch)[1].endswith("the allowance holds 0 such passes beside the products.")
