"""Reading SMILES files: .smi with names, CSV columns, ZINC250k quoting, and one-line errors."""

import pytest

from latentsci.errors import InputDataError
from latentsci.molecules.ingest import read_smiles_file


def test_smi_with_names_blank_lines_and_comments(tmp_path):
    path = tmp_path / "a.smi"
    path.write_text("# header\nCCO ethanol\n\nc1ccccc1\tbenzene\n")
    records = read_smiles_file(path)
    assert records.texts == ["CCO", "c1ccccc1"] and records.lines == [2, 4]


def test_zinc250k_csv_with_quoted_trailing_newlines(tmp_path):
    path = tmp_path / "250k_rndm_zinc_drugs_clean_3.csv"
    path.write_text('smiles,logP,qed,SAS\n"CC(C)(C)c1ccc2occc2c1\n",5.0,0.7,2.1\n"CCO\n",-0.1,0.4,1.0\n')
    records = read_smiles_file(path, carry=["logP"])
    assert records.texts == ["CC(C)(C)c1ccc2occc2c1", "CCO"]
    assert records.extra["logP"] == ["5.0", "-0.1"]


def test_missing_column_message(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("name,smi\nx,CCO\n")
    with pytest.raises(InputDataError) as err:
        read_smiles_file(path)
    assert str(err.value) == f"{path}: no column 'smiles' (columns: name, smi)"


@pytest.mark.parametrize("name, content", [("e.smi", ""), ("e.csv", ""), ("h.csv", "smiles\n")])
def test_empty_file_message(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputDataError) as err:
        read_smiles_file(path)
    expected = "file holds no SMILES (it is empty)" if name == "e.csv" else "file holds no SMILES"
    assert str(err.value) == f"{path}: {expected}"


def test_missing_file_message(tmp_path):
    with pytest.raises(InputDataError) as err:
        read_smiles_file(tmp_path / "nope.smi")
    assert str(err.value) == f"{tmp_path / 'nope.smi'}: no such file"


def test_several_files_are_one_set_with_their_file_named(tmp_path):
    from latentsci.molecules.chem import process_smiles_batch
    from latentsci.molecules.ingest.table import IngestConfig, assemble, read_sources

    (tmp_path / "a.smi").write_text("CCO\nc1ccccc1\n")
    (tmp_path / "b.smi").write_text("OCC\nnot-a-smiles\nCCN\n")
    config = IngestConfig(source=[tmp_path / "a.smi", tmp_path / "b.smi"],
                          split={"method": "random", "fractions": {"train": 0.5, "test": 0.5}})
    records = read_sources(config)
    table, report = assemble(records, process_smiles_batch(records.texts), config, "x")
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1", "CCN"]
    assert table["source"].tolist() == ["a.smi", "a.smi", "b.smi"]
    assert sorted(table["split"]) == ["test", "train", "train"]  # split over the union
    assert report["line"].tolist() == ["b.smi:1", "b.smi:2"]
    assert report["reason"].iloc[0] == "duplicate of line a.smi:1"


def test_one_file_keeps_plain_line_numbers(tmp_path):
    from latentsci.molecules.chem import process_smiles_batch
    from latentsci.molecules.ingest.table import IngestConfig, assemble, read_sources

    (tmp_path / "a.smi").write_text("CCO\nOCC\n")
    config = IngestConfig(source=tmp_path / "a.smi")
    records = read_sources(config)
    table, report = assemble(records, process_smiles_batch(records.texts), config, "x")
    assert "source" not in table and report["line"].tolist() == [2]
