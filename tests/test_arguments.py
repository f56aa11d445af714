"""Flags: counts below one, bad choices and templates are named."""
import pytest



@pytest.mark.parametrize("driver,flags", [("search", ["--depth", "0"]), ("search", ["--batch_size", "-1"]),
                                          ("encode", ["--batch_size", "0"]), ("bm25", ["--depth", "0"]),
                                          ("mine", ["--data_dir", "d", "--output_file", "o", "--n_negatives", "0"]),
                                          ("train", ["--train_group_size", "0"])])
def test_count_flags_below_one_name_the_flag(driver, flags):
    import importlib

    module = importlib.import_module(f"retriever.driver.{driver}")
    with pytest.raises(ValueError, match=f"{flags[-2]} must be >= 1; got {flags[-1]}"):
        module.main(flags)
