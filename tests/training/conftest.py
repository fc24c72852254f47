"""The tiny embedded dataset and model (tests/tiny.yaml) shared by the training tests."""
import pytest
import tiny


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("embedded"))


@pytest.fixture
def tiny_config(tiny_data_root):
    def make(*overrides):
        return tiny.config(f"data.embedded.root={tiny_data_root}", *overrides)
    return make
