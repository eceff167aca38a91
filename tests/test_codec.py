"""The codec contract on both domains: round trips, per-item errors, NaN rows with reasons, and
load_codec from a folder (in a fresh process too) and from an MLflow URI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from rdkit import Chem

from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.networks.checkpoint import save_field_autoencoder
from latentsci.fields.solvers.navier_stokes import gaussian_random_field
from latentsci.latent import Codec, CodecError, codec_record, domain_pieces, load_codec, to_latent
from latentsci.latent.codec import weights_sha256
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
from latentsci.molecules.vae.batching import collate, make_example
from latentsci.molecules.vae.checkpoint import save_checkpoint
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary

from conftest import ROOT, SMILES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MOLECULES = SMILES[:8]
CONFIG = MoleculeVAEConfig(latent_dim=16, encoder_hidden=64, encoder_layers=2, decoder_embed=32,
                           decoder_hidden=128, decoder_layers=1)


@pytest.fixture(scope="module")
def molecule_folder(tmp_path_factory):
    """A tiny VAE that has memorised 8 molecules (300 Adam steps), saved as a checkpoint."""
    torch.manual_seed(0)
    vocab = SelfiesVocabulary.build(MOLECULES, max_len=40)
    model = build_molecule_vae(CONFIG, len(vocab))
    model.vocab = vocab
    batch = collate([make_example(s, vocab) for s in MOLECULES])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        optimiser.zero_grad()
        model.loss(batch, beta=1e-3).total.backward()
        optimiser.step()
    return save_checkpoint(tmp_path_factory.mktemp("vae") / "model", model.eval(), CONFIG, vocab)


@pytest.fixture(scope="module")
def field_folder(tmp_path_factory):
    """A tiny autoencoder fitted to 4 smooth 32 x 32 frames (300 Adam steps), saved with the
    frame shape its codec encodes."""
    torch.manual_seed(0)
    frames = 3.0 + gaussian_random_field(4, 32, 2.5, 7.0, torch.Generator().manual_seed(0))
    frames = frames[:, None] / frames.std()
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2,
                                                           blocks=1, latent_channels=4))
    model.fit_scale(frames)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        optimiser.zero_grad()
        model(frames).backward()
        optimiser.step()
    folder = save_field_autoencoder(tmp_path_factory.mktemp("ae") / "model", model.eval(),
                                    {"frame_shape": [1, 32, 32]})
    return folder, frames.numpy()


def test_molecules_round_trip_and_unreadable_items_get_nan_rows_with_reasons(molecule_folder):
    codec = load_codec(molecule_folder)
    assert isinstance(codec, Codec) and codec.kind == "molecule_vae" and codec.latent_shape == (16,)
    encoded = codec.encode([*MOLECULES, "C1CC(", "CC[Sn](C)(C)C", 42])
    assert encoded.reasons[8:] == ["unparsable SMILES", "atom Sn outside the featuriser's "
                                   "vocabulary", "not a SMILES string"]
    assert encoded.ok.tolist() == [True] * 8 + [False] * 3
    assert np.isnan(encoded.z[8:]).all() and np.isfinite(encoded.z[:8]).all()
    decoded = codec.decode(encoded.z[:8])
    exact = sum(Chem.CanonSmiles(d) == Chem.CanonSmiles(s) for d, s in zip(decoded, MOLECULES))
    assert exact >= 7  # memorised: greedy decodes of the posterior means give them back
    with pytest.raises(CodecError, match=r"z has shape \(2, 3\), expected \(rows, 16\)"):
        codec.decode(np.zeros((2, 3)))


def test_molecule_reconstruction_error_is_per_item_and_matches_the_training_loss(molecule_folder):
    codec = load_codec(molecule_folder)
    error = codec.reconstruction_error([*MOLECULES, "C1CC(", "[Sn]"])
    assert error.shape == (10,) and np.isnan(error[8:]).all() and np.isfinite(error[:8]).all()
    alone = [codec.reconstruction_error([s])[0] for s in MOLECULES[:3]]
    np.testing.assert_allclose(error[:3], alone, rtol=1e-5)  # one number per item, batch-free
    model = codec.model
    batch = collate([make_example(s, model.vocab) for s in MOLECULES])
    with torch.no_grad():
        mean, _ = model.recon_loss(model.encode_batch(batch)[0], batch)
    assert error[:8].mean() == pytest.approx(float(mean), rel=1e-5)  # the loss's per-item parts
    # a memorised molecule reconstructs far better than an unseen one of the same size
    assert codec.reconstruction_error(["CCCCCCO"])[0] > 3 * np.median(error[:8])


def test_fields_round_trip_and_nan_frames_get_nan_rows(field_folder):
    folder, frames = field_folder
    codec = load_codec(folder)
    assert codec.kind == "field_autoencoder" and codec.latent_shape == (4, 8, 8)
    bad = frames[:1].copy()
    bad[0, 0, 3, 3] = np.nan
    encoded = codec.encode(np.concatenate([frames, bad]))
    assert encoded.z.shape == (5, 256) and encoded.reasons == [None] * 4 + [
        "frame holds NaN or inf"]
    assert np.isnan(encoded.z[4]).all() and np.isfinite(encoded.z[:4]).all()
    assert to_latent(codec, encoded.z[:4]).shape == (4, 4, 8, 8)
    decoded = codec.decode(encoded.z[:4])
    relative = np.linalg.norm(decoded - frames) / np.linalg.norm(frames - frames.mean())
    assert decoded.shape == frames.shape and relative < 0.2
    error = codec.reconstruction_error(np.concatenate([frames, bad]))
    assert np.isnan(error[4]) and (error[:4] < 0.3).all()
    with pytest.raises(CodecError, match=r"frames shaped \(2, 1, 16, 16\), expected \(n, 1, 32, 32\)"):
        codec.encode(np.zeros((2, 1, 16, 16)))


def test_a_field_codec_needs_its_grid(tmp_path, field_folder):
    folder, _ = field_folder
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2))
    older = save_field_autoencoder(tmp_path / "older", model)  # no frame_shape recorded
    with pytest.raises(CodecError, match="pass frame_shape=\\(channels, x, y\\) to load_codec"):
        load_codec(older)
    assert load_codec(older, frame_shape=(1, 16, 16)).latent_shape == (4, 4, 4)


def test_load_codec_in_a_fresh_process_picks_the_domain_from_the_checkpoint(molecule_folder,
                                                                            field_folder):
    # the latent package imports neither domain; the checkpoint names the module to import
    script = ("import json, sys\nfrom latentsci.latent import load_codec\n"
              "before = sorted(m for m in sys.modules if m.startswith(('latentsci.molecules', "
              "'latentsci.fields')))\n"
              "kinds = [load_codec(p).kind for p in sys.argv[1:]]\n"
              "json.dump({'before': before, 'kinds': kinds}, sys.stdout)")
    out = subprocess.run([sys.executable, "-c", script, str(molecule_folder),
                          str(field_folder[0])], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    seen = json.loads(out.stdout)
    assert seen == {"before": [], "kinds": ["molecule_vae", "field_autoencoder"]}


def test_checkpoints_from_before_the_codec_contract_load_by_their_format(tmp_path,
                                                                         molecule_folder):
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((molecule_folder / "meta.json").read_text())
    del meta["codec"]  # what save_checkpoint wrote before
    (old / "meta.json").write_text(json.dumps(meta))
    (old / "model.pt").write_bytes((molecule_folder / "model.pt").read_bytes())
    codec = load_codec(old)
    assert codec.kind == "molecule_vae" and codec.weights_sha256 == weights_sha256(molecule_folder)
    assert codec_record(codec) == {"kind": "molecule_vae", "version": "1", "source": str(old),
                                   "weights_sha256": weights_sha256(molecule_folder)}


def test_what_is_not_a_codec_is_one_line(tmp_path):
    with pytest.raises(CodecError, match=r"not a latentsci model \(expected model.pt and meta.json\)"):
        load_codec(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"")
    (tmp_path / "meta.json").write_text('{"format": "somebody.else"}')
    with pytest.raises(CodecError, match="meta.json names no codec \\(format 'somebody.else'\\)"):
        load_codec(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": "latentsci.field_model", "kind": '
                                        '"latent_surrogate"}')
    with pytest.raises(CodecError, match="a 'latent_surrogate' model is not a codec"):
        load_codec(tmp_path)


def test_load_codec_from_an_mlflow_uri(tmp_path, molecule_folder):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("codec", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    client.log_artifacts(run_id, str(molecule_folder), artifact_path="checkpoint")
    codec = load_codec(f"runs:/{run_id}/checkpoint", tracking_uri=uri)
    local = load_codec(molecule_folder)
    assert codec.source == f"runs:/{run_id}/checkpoint"
    np.testing.assert_array_equal(codec.encode(MOLECULES).z, local.encode(MOLECULES).z)
    assert codec.weights_sha256 == local.weights_sha256
    with pytest.raises(CodecError, match="^runs:/0123/checkpoint: cannot fetch the model from "
                                         "MLflow: "):
        load_codec("runs:/0123/checkpoint", tracking_uri=uri)


def _written_by_a_copy(tmp_path, molecule_folder):
    """(a copy of the model folder, its codec, a store of MOLECULES that codec wrote)."""
    import shutil

    from latentsci.store import LatentStore

    folder = shutil.copytree(molecule_folder, tmp_path / "model")
    codec = load_codec(folder)
    store = LatentStore.create(tmp_path / "s.zarr", 8, 16, rows_per_shard=1024,
                               attrs={"codec": codec_record(codec)})
    store.write_rows(0, codec.encode(MOLECULES).z, [f"m{i}" for i in range(8)])
    store.finalize()
    return folder, codec, LatentStore.open(tmp_path / "s.zarr")


def _retrain_in_place(folder) -> None:
    """Shift every weight a little and save over the model, as a retraining would."""
    state = torch.load(folder / "model.pt", weights_only=True)
    state = {k: v + 1e-3 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, folder / "model.pt")


def test_a_store_gives_back_the_codec_that_wrote_it_and_notices_changed_weights(
        tmp_path, molecule_folder):
    from latentsci.latent import store_codec
    from latentsci.store import LatentStore

    folder, codec, opened = _written_by_a_copy(tmp_path, molecule_folder)
    back = store_codec(opened)
    assert back.kind == "molecule_vae" and back.weights_sha256 == codec.weights_sha256
    assert back.decode(opened.vectors(slice(None))) == codec.decode(codec.encode(MOLECULES).z)
    _retrain_in_place(folder)
    with pytest.raises(CodecError, match="is not the one that wrote this store"):
        store_codec(opened)
    bare = LatentStore.create(tmp_path / "bare.zarr", 1, 16, rows_per_shard=1024)
    with pytest.raises(CodecError, match="the store records no codec"):
        store_codec(bare)


def test_codecs_take_empty_batches_and_refuse_a_lone_string(molecule_folder, field_folder):
    molecules, fields = load_codec(molecule_folder), load_codec(field_folder[0])
    assert molecules.encode([]).z.shape == (0, 16) and molecules.decode(np.zeros((0, 16))) == []
    assert fields.encode([]).z.shape == (0, 256) and fields.decode(np.zeros((0, 256))).shape == (
        0, 1, 32, 32)
    assert fields.reconstruction_error(np.zeros((0, 1, 32, 32))).shape == (0,)
    with pytest.raises(CodecError, match="items must be a list"):
        molecules.encode("CCO")


def test_rows_follow_positions_and_rejected_rows_decode_to_nothing(molecule_folder):
    import pandas as pd

    codec = load_codec(molecule_folder)
    series = pd.Series(["C1CC(", MOLECULES[0], MOLECULES[1]], index=[2, 0, 1])
    encoded = codec.encode(series)
    assert encoded.reasons == ["unparsable SMILES", None, None]
    np.testing.assert_allclose(encoded.z[1:], codec.encode(MOLECULES[:2]).z, rtol=1e-6)
    decoded = codec.decode(encoded.z)
    assert decoded[0] is None and decoded[1:] == codec.decode(encoded.z[1:])


def test_meta_json_cannot_choose_a_module_outside_latentsci(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"")
    (tmp_path / "meta.json").write_text('{"codec": {"kind": "x", "module": "os"}}')
    with pytest.raises(CodecError, match="codec module 'os' is not part of latentsci"):
        load_codec(tmp_path)


def test_codecs_bring_their_domain_pieces_in_a_fresh_process(molecule_folder, field_folder):
    """Similarity and properties plug in by codec kind, like the codec itself: a process that
    loaded a codec through the latent package has them without importing a domain."""
    script = ("import json, sys\nfrom latentsci.latent import domain_pieces, load_codec\n"
              "codec = load_codec(sys.argv[1])\npieces = domain_pieces(codec)\n"
              "sim = pieces.similarity(['CCO', 'C1CC1'], ['CCO', 'c1ccccc1O', 'not-a-smiles'])\n"
              "props = pieces.properties(['CCO', 'xx'])\n"
              "json.dump({'sim': [[None if v != v else round(v, 3) for v in r] for r in sim],\n"
              "           'qed': [None if v != v else round(v, 3) for v in props['qed']],\n"
              "           'names': list(pieces.property_names)}, sys.stdout)")
    out = subprocess.run([sys.executable, "-c", script, str(molecule_folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(out.stdout)
    assert seen["sim"][0][0] == 1.0 and seen["sim"][0][1] < 0.5 and seen["sim"][0][2] is None
    assert seen["sim"][1][0] < 1.0
    assert seen["qed"][0] is not None and seen["qed"][1] is None  # unreadable: NaN, not an error
    assert seen["names"] == ["mw", "logp", "qed", "sa", "tpsa", "heavy_atoms"]
    folder, frames = field_folder
    pieces = domain_pieces(load_codec(folder))
    bad = frames[:2].copy()
    bad[1, 0, 0, 0] = np.nan
    sim = pieces.similarity(frames[:2], np.concatenate([frames[:1], -frames[:1], bad[1:]]))
    assert sim[0, 0] == pytest.approx(1.0) and sim[0, 1] == pytest.approx(-1.0)
    assert np.isnan(sim[:, 2]).all()
    stats = pieces.properties(bad)
    assert stats["mean_0"][0] == pytest.approx(frames[0].mean(), rel=1e-5)
    assert np.isnan(stats["std_0"][1])
    with pytest.raises(CodecError, match="registers no similarity"):
        domain_pieces("no_such_kind")


def test_a_worker_loads_a_codec_once_and_again_when_its_folder_is_rewritten(
        tmp_path, molecule_folder):
    import os

    from latentsci.latent.codec import worker_codec

    folder, _, opened = _written_by_a_copy(tmp_path, molecule_folder)
    first = worker_codec(opened)
    assert worker_codec(opened) is first  # the second task of a worker reuses it
    assert worker_codec(opened, str(folder)) is not first  # an explicit model is its own entry
    _retrain_in_place(folder)
    stat = (folder / "model.pt").stat()
    os.utime(folder / "model.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(CodecError, match="is not the one that wrote this store"):
        worker_codec(opened)  # rewritten weights are read again, and refused
