"""One test passes, one fails on purpose with a clear message."""


def compute_total(prices):
    return sum(prices)


def test_total_of_one_item():
    assert compute_total([5]) == 5


def test_total_fails_on_purpose():
    expected = 10
    actual = compute_total([3, 4])
    assert actual == expected, f"expected the total to be {expected}, got {actual} (this failure is intended)"
