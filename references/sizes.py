"""The published architectures, as this package's config dicts (defined once; placeholder labels).

MMS-LID's keys are transformers' own (facebook/mms-lid-*/config.json), so the same dict builds
transformers' Wav2Vec2Config (references/mms.py) and the MLX model; ECAPA's are the ecapa_lid
config that the SpeechBrain reader derives from speechbrain/lang-id-voxlingua107-ecapa's
hyperparams.yaml (REFERENCE.md).
"""


def mms_lid(num_labels: int = 256) -> dict:
    """facebook/mms-lid-<num_labels>: 964 M parameters at 256 labels."""
    return dict(
        model_type="wav2vec_cls", hidden_size=1280, num_hidden_layers=48, num_attention_heads=16,
        intermediate_size=5120, conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2],
        conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_bias=True, feat_extract_norm="layer",
        feat_extract_activation="gelu", do_stable_layer_norm=True, num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16, classifier_proj_size=1024, adapter_attn_dim=16,
        use_weighted_layer_sum=False, layer_norm_eps=1e-5, id2label={str(i): f"l{i:04d}" for i in range(num_labels)},
    )


def voxlingua107_ecapa() -> dict:
    """speechbrain/lang-id-voxlingua107-ecapa: 21 M parameters, 107 labels."""
    return dict(
        model_type="ecapa_lid", n_mels=60, channels=[1024, 1024, 1024, 1024, 3072], kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1], attention_channels=128, res2net_scale=8, se_channels=128, lin_neurons=256,
        classifier="xvector", classifier_lin_neurons=512, labels=[f"l{i:03d}" for i in range(107)],
    )


def tiny_ecapa() -> dict:
    """The VoxLingua107 shape at tiny widths, for the reduced benchmark runs."""
    return dict(voxlingua107_ecapa(), channels=[32, 32, 32, 32, 96], attention_channels=16, lin_neurons=24,
                se_channels=16, classifier_lin_neurons=32)


def whisper_base() -> dict:
    """OpenAI Whisper base (multilingual, 74 M parameters), as whisper_lid's config."""
    return {"model_type": "whisper_lid", "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
            "n_audio_layer": 6, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8,
            "n_text_layer": 6}
