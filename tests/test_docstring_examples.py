"""The public functions' examples (the ``>>>`` lines of their docstrings) run and print what they say."""
import doctest

import pytest

import numerics.mc
import numerics.population

MODULES = (numerics.population, numerics.mc)  # numerics.loss / gradient / hessian / monte_carlo live here
PUBLIC = ("loss", "gradient", "hessian", "monte_carlo")


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.failed == 0


def test_every_public_entry_point_has_an_example():
    import numerics

    for name in PUBLIC:
        assert ">>>" in (getattr(numerics, name).__doc__ or ""), name
