"""The operator's command line: flags that take a number refuse what is not one, with the
value named, before anything starts."""

import pytest

from modelloop.__main__ import main


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_a_resync_period_that_is_not_a_positive_number_of_seconds_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", f"--resync-period={value}"])
    assert exited.value.code == 2
    assert f"'{value}' is not a number of seconds above 0" in capsys.readouterr().err
