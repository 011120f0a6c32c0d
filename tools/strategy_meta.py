"""What the docs say about each registered strategy that the code cannot say itself.

Read by ``tools/docs_hooks.py``, which builds one page per registered strategy
(``activelearn.strategies.available()``) from the registry (docstring,
``requires``, attached extensions, constructor defaults) and this table.
``tests/test_docs_site.py`` fails when a registered strategy has no entry here,
and when a number quoted under ``results`` does not appear on the results page
it links: copy numbers from ``docs/results/*.md``, never type them from memory.

Fields of an entry:

``paper``
    The citation (authors, title where the class docstring or METHODS.md gives
    it, venue and year), or ``None`` for methods without one paper.
``needs``
    What the strategy needs besides the model outputs in ``requires`` (oracle,
    backbone, pool), in words; may be empty.
``results``
    ``(page, sentence)`` pairs: a page under ``docs/results/`` and one
    sentence summarising what it measured for this strategy, numbers copied
    from the page.  Empty: "no reproduction yet".
"""

from __future__ import annotations

SETTLES = 'Settles, "Active Learning Literature Survey", Computer Sciences Technical Report 1648, University of Wisconsin-Madison, 2009 (survey of the classic uncertainty scores)'
WAN = 'Wan et al., "Nearest Neighbor Classifier Embedded Network for Active Learning", AAAI 2021'
KIM_KIM_HWANG = "Kim, Kim & Hwang (contrastive cluster-distance acquisition on open-set pools with annotation costs; no public code)"
IBAL = "Pezeshkpour, Zhao & Singh (IBAL: representer-point influence; representer points: Yeh, Kim, Yen & Ravikumar, NeurIPS 2018)"
RMNIST = "results/rmnist.md"
IBAL_SYN = "results/ibal_synthetic.md"
MIXMNIST = "results/mixmnist.md"
LL_NCE = "results/rmnist_ll_ncenet.md"
CLUSTER = "results/cluster_annotation.md"

STRATEGY_META: dict[str, dict[str, object]] = {
    "random": {
        "paper": None,
        "needs": "",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 95.0 ± 0.1 % at 5,000 labels (the DACS paper's Random: 94.7)."),
            (MIXMNIST, "MixMNIST, paper protocol, 6,000-sample pool, 3 seeds: 94.11 ± 0.20 % at 300 in-task labels for a cost of 356 ± 4 (the cheapest method there)."),
            (IBAL_SYN, "Imbalanced synthetic set (spread 0.5, Bayes-optimal accuracy 98.0 %), 5 seeds: 97.6 % accuracy but 87.5 % balanced accuracy at 100 labels."),
        ],
    },
    "entropy": {
        "paper": SETTLES,
        "needs": "a softmax head (probabilities summing to one; use `bentropy` otherwise)",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 96.5 ± 0.3 % at 5,000 labels, below Random at 1,000 and 1,500 labels."),
            (MIXMNIST, "MixMNIST, paper protocol, 6,000-sample pool, 3 seeds: 95.96 ± 0.14 % at 300 in-task labels, cost 617 ± 27 (the paper: 32,738)."),
            (IBAL_SYN, "Imbalanced synthetic set, 5 seeds: 98.1 ± 0.3 % accuracy, 93.5 ± 1.1 % balanced accuracy at 100 labels."),
        ],
    },
    "least_confidence": {
        "paper": SETTLES,
        "needs": "a softmax head (probabilities summing to one)",
        "results": [
            (MIXMNIST, "MixMNIST, paper protocol, 6,000-sample pool, 3 seeds: 96.17 ± 0.09 % at 300 in-task labels, cost 661 ± 22 (the paper: 6,582)."),
        ],
    },
    "margin": {
        "paper": SETTLES,
        "needs": "a softmax head (probabilities summing to one)",
        "results": [],
    },
    "bentropy": {
        "paper": WAN + ' ("balanced entropy")',
        "needs": "any head; meant for heads whose per-class scores do not sum to one (NCE-Net's prototype head)",
        "results": [],
    },
    "coreset": {
        "paper": 'Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach", ICLR 2018',
        "needs": "",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 91.7 ± 0.3 % at 1,000 labels and 96.9 ± 0.3 % at 5,000 (the DACS paper's Core-set: 88.6 and 96.5)."),
        ],
    },
    "dacs": {
        "paper": 'Kim & Shin, "In Defense of Core-set: A Density-aware Core-set Selection for Active Learning", KDD 2022',
        "needs": "",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 91.9 ± 0.1 % at 1,000 labels and 97.7 ± 0.2 % at 5,000 (the paper: 92.1 and 97.6); above Core-set by +0.2 to +0.9 points, level with CDAL from 3,500 labels on."),
        ],
    },
    "cdal": {
        "paper": 'Agarwal, Arora, Anand & Arora, "Contextual Diversity for Active Learning", ECCV 2020 (the CDAL-CS variant)',
        "needs": "a softmax head (probabilities summing to one)",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 92.2 ± 0.3 % at 1,000 labels and 97.7 ± 0.1 % at 5,000 (the DACS paper's CDAL row: 90.5 and 96.7)."),
        ],
    },
    "learning_loss": {
        "paper": 'Yoo & Kweon, "Learning Loss for Active Learning", CVPR 2019',
        "needs": "a backbone whose stages the loss-prediction module can tap (`stage0`, `stage1`, ...)",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials: 97.2 ± 0.1 % at 5,000 labels (Core-set 96.9, DACS 97.7)."),
            (LL_NCE, "Repeated MNIST, 25-epoch study, 3 trials: 96.7 ± 0.1 % at 5,000 labels."),
        ],
    },
    "ncenet": {
        "paper": WAN,
        "needs": "replaces the softmax head, so `entropy`, `least_confidence` and `margin` refuse the model; use `bentropy`",
        "results": [
            (RMNIST, "Repeated MNIST, paper schedule, 3 trials, gradient clip 5: 97.1 ± 0.0 % at 5,000 labels."),
            (LL_NCE, "Repeated MNIST, 25-epoch study (before the default clip): the Euclidean head reaches 90.7 ± 0.3 %, the cosine head 96.6 ± 0.0 % at 5,000 labels."),
        ],
    },
    "contrastive_distance": {
        "paper": KIM_KIM_HWANG,
        "needs": "an open-set pool and an oracle that may answer \"not in task\" (run with `ActiveLoop(mode=\"quota\")`); it trains its own encoder, so the model's outputs are not used",
        "results": [
            (MIXMNIST, "MixMNIST, paper protocol, 6,000-sample pool, MLP encoder, 3 seeds: 87.03 ± 1.13 % (its fine-tuned classifier) at 300 in-task labels, cost 430 ± 7: less than least confidence (661) and entropy (617), more than random (356); the paper: 96.65 %, cost 406."),
        ],
    },
    "contrastive_random": {
        "paper": KIM_KIM_HWANG + ' (the "Random(CL)" baseline)',
        "needs": "as `contrastive_distance`",
        "results": [
            (MIXMNIST, "MixMNIST, paper protocol, 6,000-sample pool, MLP encoder, 3 seeds: 88.19 ± 0.39 % (its fine-tuned classifier) at 300 in-task labels, cost 419 ± 3, within one standard deviation of `contrastive_distance` (430 ± 7)."),
        ],
    },
    "ibal": {
        "paper": IBAL,
        "needs": "a last linear layer (the representer theorem is taken on it)",
        "results": [
            (IBAL_SYN, "Imbalanced synthetic set, 5 seeds: the weakest strategy, 95.5 ± 1.3 % accuracy and 67.3 ± 8.4 % balanced accuracy at 100 labels; its picks' mean max-probability is 1.000 (under the adopted reading of the paper's Eq. 2 it picks the points the model is surest of), so the paper's claim does not hold here."),
        ],
    },
    "ibal_d": {
        "paper": IBAL + " (IBAL-D)",
        "needs": "trains a small autoencoder on the pool once (seeded)",
        "results": [
            (IBAL_SYN, "Imbalanced synthetic set, 5 seeds, gamma 10 (tuned on validation draws): 92.7 ± 2.2 % balanced accuracy at 100 labels and +9.66 points over random on the mean over cycles (5 of 5 seeds), but the distance term alone does as well (IBAL-D minus D-only: -0.33)."),
        ],
    },
    "entropy_d": {
        "paper": IBAL + " (Entropy-D)",
        "needs": "trains a small autoencoder on the pool once (seeded)",
        "results": [
            (IBAL_SYN, "Imbalanced synthetic set, 5 seeds, gamma 3 (tuned on validation draws): 97.9 ± 0.4 % accuracy, 93.7 ± 1.3 % balanced accuracy at 100 labels; +6.00 points of balanced accuracy over entropy on the mean over cycles (5 of 5 seeds)."),
        ],
    },
    "cluster_annotation": {
        "paper": "Perez, Lebret & Aberer (cluster-based annotation: an expert labels whole k-means clusters)",
        "needs": "an oracle that can answer for a cluster (`SimulatedOracle` can); the budget counts interactions",
        "results": [
            (CLUSTER, "The paper's protocol on a 5,000-image MNIST pool, 3 seeds: at 950 interactions (19% of the pool) no scenario comes within 1 point of full supervision (92.5 %); cluster-only leads early (73.5 vs 67.7 for random at 150 interactions), then stagnates (86.5 vs 87.3 at 950); its cluster labels are 88-91 % correct."),
        ],
    },
    "bald": {
        "paper": 'Houlsby, Huszár, Ghahramani & Lengyel, "Bayesian Active Learning for Classification and Preference Learning", 2011; with MC dropout: Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image Data", ICML 2017',
        "needs": "a backbone with dropout layers (`MLP(..., dropout=0.5)`, `mlp:dropout=0.5` on the command line)",
        "results": [],
    },
    "batchbald": {
        "paper": 'Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch Acquisition for Deep Bayesian Active Learning", NeurIPS 2019',
        "needs": "as `bald`, plus the candidates' MC log-probabilities in memory",
        "results": [],
    },
    "badge": {
        "paper": 'Ash, Zhang, Krishnamurthy, Langford & Agarwal, "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020',
        "needs": "a softmax head (probabilities summing to one)",
        "results": [],
    },
    "vaal": {
        "paper": 'Sinha, Ebrahimi & Darrell, "Variational Adversarial Active Learning", ICCV 2019',
        "needs": "",
        "results": [],
    },
    "typiclust": {
        "paper": 'Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High and Low Budgets", ICML 2022',
        "needs": "",
        "results": [],
    },
}
