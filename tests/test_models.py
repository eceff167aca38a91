"""Molecule VAE parts on tiny data: featuriser, vocabulary, losses, and an overfit check."""

import numpy as np
import pytest
import torch
from rdkit import Chem

from latentsci.molecules.chem import Reject
from latentsci.errors import InputDataError
from latentsci.molecules.vae import MoleculeVAEConfig, build_molecule_vae
from latentsci.latent.gaussian import LatentGaussian
from latentsci.molecules.vae.batching import collate, make_example
from latentsci.molecules.vae.featurize import ATOM_DIM, BOND_DIM, mol_to_graph
from latentsci.molecules.vae.prior import StandardNormalPrior
from latentsci.molecules.vae.sampling import decode_tokens
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary

from conftest import SMILES


def heavy_atoms(smiles: str) -> int:
    """Atoms in the molecule RDKit parses from `smiles`; -1 when it does not parse. (A bare
    `MolFromSmiles(s) is not None` cannot catch an empty decode: "" parses to an empty Mol.)"""
    mol = Chem.MolFromSmiles(smiles)
    return -1 if mol is None else mol.GetNumAtoms()


def test_benzene_graph():
    graph = mol_to_graph(Chem.MolFromSmiles("c1ccccc1"))
    assert graph.x.shape == (6, ATOM_DIM) and graph.edge_index.shape == (2, 12)
    assert graph.edge_attr.shape == (12, BOND_DIM)
    assert graph.edge_attr[:, 3].eq(1).all()  # every bond aromatic


def test_out_of_vocabulary_atoms_and_charges_are_rejected():
    assert mol_to_graph(Chem.MolFromSmiles("CC[Sn](C)(C)C")) == Reject(
        "atom Sn outside the featuriser's vocabulary")
    assert mol_to_graph(Chem.MolFromSmiles("C[N+2]C")).reason.startswith(
        "formal charge +2 on N outside")


def test_vocabulary_round_trip_and_rejects():
    vocab = SelfiesVocabulary.build(SMILES, max_len=40)
    for smiles in SMILES:
        ids = vocab.encode(smiles)
        assert Chem.CanonSmiles(vocab.decode(ids)) == Chem.CanonSmiles(smiles)
    assert vocab.encode("CCBr").reason == "SELFIES token [Br] outside the vocabulary"
    assert vocab.encode("C" * 60).reason == "too long: 60 SELFIES tokens > 39"
    assert SelfiesVocabulary.from_dict(vocab.to_dict()) == vocab


def test_any_token_sequence_decodes_to_a_valid_molecule():
    vocab = SelfiesVocabulary.build(SMILES)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        ids = torch.randint(3, len(vocab), (20,), generator=generator).tolist()
        # 20 draws over 13 tokens, 7 of them atoms: every seeded sequence places an atom
        assert heavy_atoms(vocab.decode(ids)) > 0, [vocab.tokens[i] for i in ids]


def test_kl_by_hand_and_free_bits():
    prior = StandardNormalPrior(3)
    zeros = torch.zeros(4, 3)
    assert prior.kl_per_dim(zeros, zeros).tolist() == [0.0, 0.0, 0.0]
    assert prior.kl_per_dim(torch.ones(4, 3), zeros).tolist() == [0.5, 0.5, 0.5]
    model = build_molecule_vae(MoleculeVAEConfig(latent_dim=3), vocab_size=10)
    total, per_dim = model.kl_loss(zeros, zeros, free_bits=0.25)
    assert float(total) == pytest.approx(0.75) and per_dim.sum() == 0


def test_kl_schedule():
    schedule = KLSchedule(beta=1.0, warmup_steps=10)
    assert [schedule.at(s) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert KLSchedule(beta=1.0, warmup_steps=10, cycle_steps=20).at(25) == 0.5


def model_config(properties=()):
    return MoleculeVAEConfig(latent_dim=16, encoder_hidden=64, encoder_layers=2, decoder_embed=32,
                             decoder_hidden=128, decoder_layers=1, properties=list(properties))


def _tiny(vocab, properties=()):
    model = build_molecule_vae(model_config(properties), len(vocab))
    model.vocab = vocab
    return model


def test_overfits_a_handful_of_molecules():
    torch.manual_seed(0)
    smiles = SMILES[:8]
    vocab = SelfiesVocabulary.build(smiles, max_len=40)
    batch = collate([make_example(s, vocab, [len(s)]) for s in smiles])
    model = _tiny(vocab, properties=["length"])
    lengths = np.array([[len(s)] for s in smiles], dtype=np.float64)
    model.property_head.fit_scale(lengths)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(250):
        loss = model.loss(batch, beta=1e-3)
        optimiser.zero_grad()
        loss.total.backward()
        optimiser.step()
        first = first if first is not None else float(loss.total.detach())
    assert float(loss.total.detach()) < 0.1 * first
    model.eval()
    mu, _ = model.encode_batch(batch)
    decoded = [vocab.decode(row) for row in decode_tokens(model.decoder, mu, 40).tolist()]
    matches = sum(Chem.CanonSmiles(d) == Chem.CanonSmiles(s) for d, s in zip(decoded, smiles))
    assert matches >= 7
    # the head learns standardised targets and answers in the property's own units
    assert float(model.property_head.std) == pytest.approx(lengths.std())
    predicted = model.predict_properties(mu.detach().numpy())
    assert np.abs(predicted - lengths).max() < 0.2 * lengths.std()


def test_prior_samples_are_valid_and_bounded():
    vocab = SelfiesVocabulary.build(SMILES, max_len=30)
    model = _tiny(vocab).eval()
    generator = torch.Generator().manual_seed(1)
    z = model.prior.sample(32, generator=generator)
    tokens = decode_tokens(model.decoder, z, max_len=30, temperature=1.0, generator=generator)
    assert tokens.shape[0] == 32 and tokens.shape[1] <= 30
    # never padding or BOS, never EOS first, and nothing but EOS once EOS was emitted
    assert not torch.isin(tokens, torch.tensor([0, 1])).any() and (tokens[:, 0] != 2).all()
    after_eos = (tokens == 2).long().cummax(dim=1).values.bool()
    assert (tokens[after_eos] == 2).all()
    # without `first_allowed` a random decoder may start on branch/ring tokens only, which
    # SELFIES decodes to "" (an empty Mol): only sequences opening on an atom token are sure to
    # hold one; every row still parses
    atoms = vocab.atom_tokens()
    for row in tokens.tolist():
        assert heavy_atoms(vocab.decode(row)) > (0 if atoms[row[0]] else -1), row
    # restricting the first token to atoms (what model.decode does) leaves no empty molecule
    generator = torch.Generator().manual_seed(1)
    z = model.prior.sample(32, generator=generator)
    restricted = decode_tokens(model.decoder, z, max_len=30, temperature=1.0,
                               generator=generator, first_allowed=torch.tensor(atoms))
    assert all(atoms[i] for i in restricted[:, 0].tolist())
    assert all(heavy_atoms(vocab.decode(row)) > 0 for row in restricted.tolist())


def test_save_load_encode_decode_sample(tmp_path):
    from latentsci.molecules.vae import MoleculeVAE
    from latentsci.molecules.vae.checkpoint import ModelFileError, save_checkpoint

    vocab = SelfiesVocabulary.build(SMILES, max_len=30)
    model = _tiny(vocab)
    save_checkpoint(tmp_path / "m", model, model_config(), vocab)
    loaded = MoleculeVAE.load(str(tmp_path / "m"))
    z = loaded.encode(["CCO", "CC[Sn](C)(C)C", "c1ccccc1"])
    assert z.shape == (3, 16) and np.isnan(z[1]).all() and np.isfinite(z[[0, 2]]).all()
    np.testing.assert_allclose(z[[0, 2]], model.eval().encode(["CCO", "c1ccccc1"]), rtol=1e-5)
    decoded = loaded.decode(z[[0, 2]])
    assert all(heavy_atoms(s) > 0 for s in decoded)
    assert decoded == model.decode(z[[0, 2]])  # the loaded decoder is the saved one
    assert len(loaded.sample(5, seed=0)) == 5 and loaded.sample(3, seed=1) == loaded.sample(3, seed=1)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.pt").write_bytes(b"x")
    (tmp_path / "bad" / "meta.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelFileError) as err:
        MoleculeVAE.load(str(tmp_path / "bad"))
    assert str(err.value) == (f"{tmp_path / 'bad'}: not a latentsci molecule VAE (format "
                              "'something-else', expected 'latentsci.molecule_vae')")


def test_decoding_never_returns_an_empty_molecule():
    vocab = SelfiesVocabulary.build(SMILES + ["C1CC2CCC1C2", "CC(C)(C)C"], max_len=30)
    model = _tiny(vocab).eval()
    with torch.no_grad():  # make branch/ring tokens and EOS the decoder's favourites
        for i, token in enumerate(vocab.tokens):
            if not vocab.atom_tokens()[i]:
                model.decoder.out.bias[i] = 50.0
    samples = model.sample(20, temperature=1.0, seed=0)
    assert all(heavy_atoms(s) > 0 for s in samples)


def test_checkpoints_from_before_standardised_property_heads_still_load(tmp_path):
    from latentsci.molecules.vae import MoleculeVAE
    from latentsci.molecules.vae.checkpoint import save_checkpoint

    vocab = SelfiesVocabulary.build(SMILES, max_len=30)
    model = _tiny(vocab, properties=["logp"])
    save_checkpoint(tmp_path / "m", model, model_config(["logp"]), vocab)
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    old = {k.replace("property_head.net.", "property_head."): v for k, v in state.items()
           if k not in ("property_head.mean", "property_head.std")}
    torch.save(old, tmp_path / "m" / "model.pt")
    loaded = MoleculeVAE.load(str(tmp_path / "m"))
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_properties(z), model.eval().predict_properties(z),
                               rtol=1e-6)


def test_latent_gaussian_matches_the_encoded_cloud_and_samples_reproducibly():
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 0.3]])
    z = rng.standard_normal((20000, 3)) @ mix.T + np.array([2.0, -1.0, 0.5])
    z[5] = np.nan  # a molecule the encoder could not read
    fitted = LatentGaussian.fit(z)
    draws = fitted.sample(20000, torch.Generator().manual_seed(1)).double().numpy()
    assert np.allclose(draws.mean(0), [2.0, -1.0, 0.5], atol=0.03)
    assert np.allclose(np.cov(draws, rowvar=False), mix @ mix.T, atol=0.03)
    again = fitted.sample(5, torch.Generator().manual_seed(1))
    assert torch.equal(again, fitted.sample(5, torch.Generator().manual_seed(1)))
    with pytest.raises(InputDataError, match="needs more than 3 encoded items, got 3"):
        LatentGaussian.fit(z[:3])


def test_sampling_from_a_fitted_latent_gaussian_decodes_every_draw():
    model = _tiny(SelfiesVocabulary.build(SMILES, max_len=40))
    dim = model.prior.latent_dim
    latent = LatentGaussian(np.full(dim, 3.0), 0.1 * np.eye(dim))  # far from N(0, I)
    out = model.eval().sample(6, temperature=1.0, seed=0, latent=latent)
    assert len(out) == 6 and all(heavy_atoms(s) > 0 for s in out)
    assert out == model.sample(6, temperature=1.0, seed=0, latent=latent)


def test_batch_normalised_mu_has_the_configured_spread_and_survives_a_round_trip(tmp_path):
    from latentsci.molecules.vae import MoleculeVAE
    from latentsci.molecules.vae.checkpoint import save_checkpoint

    torch.manual_seed(0)
    vocab = SelfiesVocabulary.build(SMILES, max_len=30)
    config = model_config().model_copy(update={"mu_batchnorm": 2.0})
    model = build_molecule_vae(config, len(vocab))
    model.vocab = vocab
    batch = collate([make_example(s, vocab) for s in SMILES])
    plain_mu, _ = _tiny(vocab).train().encode_batch(batch)
    mu, _ = model.train().encode_batch(batch)
    # unit spread per dimension times the scale, where an unnormalised encoder starts tiny
    assert float(mu.std(dim=0, unbiased=False).mean()) == pytest.approx(2.0, rel=1e-2)
    assert float(plain_mu.std(dim=0).mean()) < 0.5
    one = collate([make_example(SMILES[0], vocab)])
    assert torch.isfinite(model.encode_batch(one)[0]).all()  # a lone last molecule still trains
    for _ in range(200):  # settle the running statistics (they start at var 1, momentum 0.1)
        model.encode_batch(batch)
    save_checkpoint(tmp_path / "m", model, config, vocab)
    loaded = MoleculeVAE.load(str(tmp_path / "m"))
    z = loaded.encode(SMILES)
    np.testing.assert_allclose(z, model.eval().encode(SMILES), rtol=1e-5, atol=1e-6)
    assert z.std(axis=0).mean() == pytest.approx(2.0, rel=0.1)  # running stats give the spread
    # a molecule's code does not depend on what it is encoded with, even from training mode
    np.testing.assert_allclose(model.train().encode(SMILES[:1])[0], z[0], atol=1e-4)
    assert model.training
