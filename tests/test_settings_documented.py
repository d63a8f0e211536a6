from pathlib import Path

from rsafe_gateway.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    missing = [
        f"RSAFE_{name.upper()}"
        for name in Settings.model_fields
        if f"| `RSAFE_{name.upper()}` |" not in README
    ]
    assert missing == []
