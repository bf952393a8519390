"""A SYNTHETIC book-review catalogue, generated deterministically, for ``recfeat demo``.

Not real data: every title, description, user and review is made up here from a seeded
``numpy.random.Generator`` (no ``hash()`` of strings, no set ordering), so the same seed
gives byte-identical output on every run and machine. It exists so the project has a
default dataset it may ship (the shared real datasets must not be copied into it).

How it is built, so that text carries real signal for cold-start evaluation:

- ~10 genres; each book belongs to one, and its title and description are written from
  that genre's vocabulary (an item's text says what kind of book it is).
- Each user loves two genres and dislikes two; they mostly read what they love, sometimes
  what they don't. A rating is ``3.3 + 1.1 * affinity + user bias + book quality + noise``,
  rounded and clipped to 1..5, so an item's description predicts who rates it highly.
- Review texts are stitched from genre- and sentiment-specific phrases (1-2 stars negative,
  3 mixed, 4-5 positive). A few users write in Chinese, as in the project's seed example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_open
from recfeat.components import Dataset
from recfeat.data import validation as v
from recfeat.data.recdata import RecData
from recfeat.plugin.options import check_ranges

# genre: (title adjectives, title nouns, description themes, liked phrase, disliked phrase, 中文名)
GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], str]] = {
    "Fantasy": (
        ("Enchanted", "Silver", "Forgotten", "Dragon's", "Hidden", "Shattered", "Eternal", "Wandering"),
        ("Crown", "Sword", "Kingdom", "Spell", "Throne", "Forest", "Prophecy", "Realm"),
        ("a young mage discovers a forbidden spell", "dragons return to a divided kingdom",
         "an exiled heir seeks the lost crown", "an ancient prophecy binds rival wizards",
         "elves and humans fight over an enchanted forest"),
        ("the magic system is inventive", "the world-building is rich and immersive",
         "the dragons felt truly alive"),
        ("the magic had no rules", "too many invented names and maps",
         "the quest dragged on forever"),
        "奇幻",
    ),
    "Science Fiction": (
        ("Quantum", "Distant", "Silent", "Orbital", "Synthetic", "Red", "Last", "Infinite"),
        ("Starship", "Colony", "Signal", "Horizon", "Machine", "Planet", "Protocol", "Galaxy"),
        ("a starship crew answers a signal from deep space", "an artificial intelligence wakes up",
         "colonists terraform a hostile planet", "a physicist bends time with quantum engines",
         "humanity negotiates with an alien civilisation"),
        ("the science is clever and plausible", "the space battles are thrilling",
         "the AI characters raise deep questions"),
        ("too much technical jargon", "the aliens were flat and the physics nonsense",
         "the spaceship chapters were dull"),
        "科幻",
    ),
    "Mystery": (
        ("Locked", "Missing", "Silent", "Crimson", "Final", "Seventh", "Quiet", "Broken"),
        ("Room", "Witness", "Alibi", "Clue", "Detective", "Letter", "Manor", "Verdict"),
        ("a detective investigates a murder in a locked room", "a missing heiress leaves one clue",
         "an inspector questions every witness at the manor", "a poisoned letter reveals old secrets",
         "a retired sleuth reopens a cold case"),
        ("the twist caught me completely off guard", "the clues are fair and the detective is sharp",
         "I could not guess the murderer"),
        ("I guessed the killer by chapter three", "the detective was bland and the clues unfair",
         "the solution made no sense"),
        "悬疑",
    ),
    "Romance": (
        ("Sweet", "Summer", "Secret", "Stolen", "Tender", "Second", "Moonlit", "Forever"),
        ("Kiss", "Promise", "Heart", "Wedding", "Letters", "Affair", "Vows", "Romance"),
        ("two rivals fall in love over one summer", "a secret engagement tests a young couple",
         "old lovers meet again at a wedding", "a bakery owner finds romance with a stranger",
         "love letters change two lives"),
        ("the chemistry between the leads is wonderful", "a heartwarming love story",
         "the romance made me swoon"),
        ("the love story was predictable and cheesy", "no chemistry between the couple",
         "too much melodrama"),
        "爱情",
    ),
    "History": (
        ("Great", "Imperial", "Ancient", "Lost", "Bitter", "Iron", "Golden", "Fallen"),
        ("Empire", "War", "Dynasty", "Revolution", "Republic", "Century", "Conquest", "Treaty"),
        ("a history of the empire's rise and fall", "the revolution told through archives and letters",
         "soldiers and generals of a forgotten war", "how an ancient dynasty ruled for centuries",
         "trade, treaties and the conquest of a continent"),
        ("meticulously researched and full of detail", "the historical analysis is brilliant",
         "brings the past to life"),
        ("dry as a textbook and full of dates", "the history is one-sided",
         "too many battles and not enough people"),
        "历史",
    ),
    "Cooking": (
        ("Simple", "Rustic", "Everyday", "Spicy", "Fresh", "Slow", "Healthy", "Homemade"),
        ("Kitchen", "Recipes", "Feast", "Bread", "Table", "Flavors", "Pantry", "Baking"),
        ("recipes for weeknight dinners and fresh bread", "a chef shares rustic family recipes",
         "slow cooking, spices and seasonal vegetables", "baking bread and pastry at home",
         "healthy meals from a simple pantry"),
        ("the recipes are easy and delicious", "every dish I cooked turned out great",
         "beautiful photos and clear instructions"),
        ("the recipes did not work and the bread failed", "ingredients are hard to find",
         "the measurements were wrong"),
        "烹饪",
    ),
    "Self-Help": (
        ("Mindful", "Better", "Atomic", "Daily", "Quiet", "Bold", "Deep", "Focused"),
        ("Habits", "Mindset", "Life", "Focus", "Success", "Path", "Confidence", "Change"),
        ("small habits that change your productivity", "a guide to mindfulness and focus",
         "building confidence and a growth mindset", "practical steps toward a calmer life",
         "how to set goals and actually reach them"),
        ("practical advice that changed my habits", "motivating and easy to apply",
         "helped me focus and stay productive"),
        ("common sense padded into a whole book", "vague advice and empty motivation",
         "repetitive and shallow"),
        "自我提升",
    ),
    "Horror": (
        ("Haunted", "Dark", "Hollow", "Bleeding", "Cursed", "Midnight", "Pale", "Rotten"),
        ("House", "Asylum", "Ghost", "Shadows", "Cellar", "Woods", "Doll", "Graveyard"),
        ("a family moves into a haunted house", "something lives in the cellar of the asylum",
         "ghosts of the graveyard return at midnight", "a cursed doll terrifies a small town",
         "campers vanish in the dark woods"),
        ("genuinely terrifying and creepy", "I slept with the lights on",
         "the suspense and dread build perfectly"),
        ("not scary at all", "cheap gore and no real horror",
         "the ghost story was silly"),
        "恐怖",
    ),
    "Children's": (
        ("Little", "Brave", "Happy", "Sleepy", "Curious", "Magic", "Tiny", "Jolly"),
        ("Bear", "Bunny", "Adventure", "Treehouse", "Puppy", "Dinosaur", "Friends", "Bedtime"),
        ("a curious bunny learns to share", "a brave little bear finds new friends",
         "a bedtime story about a sleepy dinosaur", "picture-book adventures in a treehouse",
         "a puppy learns to count and read"),
        ("my kids loved it and asked for it every night", "lovely illustrations for young readers",
         "a perfect bedtime story"),
        ("too long for young kids and boring pictures", "my children lost interest",
         "the illustrations are ugly"),
        "童书",
    ),
    "Poetry": (
        ("Wild", "Salt", "Paper", "Winter", "Blue", "Broken", "Quiet", "Burning"),
        ("Poems", "Verses", "Songs", "Elegies", "Sonnets", "Hymns", "Odes", "Stanzas"),
        ("poems about grief, love and the sea", "sonnets on winter and memory",
         "free verse about cities and solitude", "elegies for a lost homeland",
         "short lyric poems on nature and light"),
        ("the poems are lyrical and moving", "beautiful imagery in every verse",
         "I reread these poems again and again"),
        ("pretentious verse that says nothing", "the poems lack rhythm and feeling",
         "obscure and hard to enjoy"),
        "诗歌",
    ),
}  # fmt: skip

OPENERS = {
    "pos": ("Loved this book.", "Absolutely wonderful.", "A great read.", "Highly recommended.",
            "One of my favourites this year.", "Five stars from me."),
    "mid": ("It was okay.", "Mixed feelings.", "Decent but uneven.", "Not bad, not great.",
            "An average read."),
    "neg": ("Disappointing.", "Did not enjoy this.", "I gave up halfway.", "Not for me.",
            "A waste of time."),
}  # fmt: skip
CLOSERS = {
    "pos": ("Can't wait to read the next one.", "I will recommend it to friends.",
            "Worth every page.", ""),
    "mid": ("Some parts were good, some were slow.", "Maybe better for other readers.", ""),
    "neg": ("Would not recommend.", "I expected much more.", ""),
}  # fmt: skip
ZH = {
    "pos": ("这本{g}书非常好看，情节紧凑，强烈推荐！", "很喜欢这本{g}作品，读完还想再读一遍。",
            "写得真好，是我今年读过最好的{g}书。"),
    "mid": ("这本{g}书还可以，有些地方有点拖沓。", "中规中矩的{g}作品，不算惊艳。"),
    "neg": ("这本{g}书很失望，读不下去。", "内容空洞，不推荐这本{g}书。"),
}  # fmt: skip
FIRST = ("Anna", "Wei", "Omar", "Lena", "Kenji", "Maya", "Lucas", "Sofia", "Ivan", "Chloe",
         "Ravi", "Elena", "Tomas", "Hana", "Diego", "Mei")  # fmt: skip
LAST = ("Moreau", "Chen", "Haddad", "Novak", "Sato", "Okafor", "Silva", "Larsen", "Petrov",
        "Nguyen", "Rossi", "Kaur", "Walsh", "Lin", "Garcia", "Berg")  # fmt: skip

NAME = "synthetic-books (SYNTHETIC sample, not real data)"


def generate(
    seed: int = 7,
    n_users: int = 300,
    n_books: int = 400,
    n_reviews: int = 3000,
    n_chinese_users: int = 6,
) -> dict[str, Any]:
    """Build the catalogue as plain columns: ``{"books": {...}, "reviews": {...}}``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    genres = list(GENRES)
    n_genres = len(genres)

    # books: round-robin genres so every genre has ~n_books / n_genres titles
    book_genre = np.arange(n_books) % n_genres
    rng.shuffle(book_genre)
    used_titles: set[str] = set()
    books: dict[str, list] = {"book_id": [], "title": [], "genre": [], "description": []}
    for b in range(n_books):
        g = genres[book_genre[b]]
        adjs, nouns, themes, *_ = GENRES[g]
        for attempt in range(1000):
            title = f"The {adjs[rng.integers(len(adjs))]} {nouns[rng.integers(len(nouns))]}"
            if attempt > 50:  # the genre's combinations are used up: number the sequel
                title = f"{title} {attempt // 50 + 1}"
            if title not in used_titles:
                break
        used_titles.add(title)
        author = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
        picks = rng.choice(len(themes), size=2, replace=False)
        desc = f"A {g.lower()} book by {author}: {themes[picks[0]]}. Also, {themes[picks[1]]}."
        books["book_id"].append(f"b{b + 1:04d}")
        books["title"].append(title)
        books["genre"].append(g)
        books["description"].append(desc)
    quality = rng.normal(0.0, 0.35, n_books)
    popularity = (
        1.0 / (1.0 + rng.permutation(n_books)) ** 0.6
    )  # Zipf-like: a long tail of rare books

    # users: two loved genres (+1), two disliked (-1), the rest neutral
    affinity = np.zeros((n_users, n_genres))
    for u in range(n_users):
        order = rng.permutation(n_genres)
        affinity[u, order[:2]] = 1.0
        affinity[u, order[2:4]] = -1.0
    bias = rng.normal(0.0, 0.3, n_users)
    chinese = np.zeros(n_users, dtype=bool)
    chinese[rng.choice(n_users, size=min(n_chinese_users, n_users), replace=False)] = True

    # reviews per user: at least 3, the rest spread at random; capped by the catalogue size
    base = min(3, n_books)
    counts = base + rng.multinomial(
        max(n_reviews - base * n_users, 0), np.full(n_users, 1.0 / n_users)
    )
    counts = np.minimum(counts, n_books)
    reviews: dict[str, list] = {
        "user_id": [],
        "book_id": [],
        "rating": [],
        "timestamp": [],
        "review": [],
    }
    start = 1451606400  # 2016-01-01
    for u in range(n_users):
        # mostly loved genres, sometimes others: exp(1.5 * affinity) per genre, times popularity
        weight = np.exp(1.5 * affinity[u, book_genre]) * popularity
        chosen = rng.choice(n_books, size=int(counts[u]), replace=False, p=weight / weight.sum())
        for b in sorted(chosen.tolist()):
            g_idx = book_genre[b]
            score = 3.3 + 1.1 * affinity[u, g_idx] + bias[u] + quality[b] + rng.normal(0.0, 0.5)
            rating = float(np.clip(np.rint(score), 1, 5))
            reviews["user_id"].append(f"u{u + 1:04d}")
            reviews["book_id"].append(books["book_id"][b])
            reviews["rating"].append(rating)
            reviews["timestamp"].append(int(start + rng.integers(0, 3 * 365 * 86400)))
            reviews["review"].append(_review_text(rng, genres[g_idx], rating, bool(chinese[u])))
    return {"books": books, "reviews": reviews, "seed": seed}


def _review_text(rng, genre: str, rating: float, chinese: bool) -> str:
    mood = "pos" if rating >= 4 else ("mid" if rating == 3 else "neg")
    if chinese:
        options = ZH[mood]
        return options[rng.integers(len(options))].format(g=GENRES[genre][5])
    liked, disliked = GENRES[genre][3], GENRES[genre][4]
    opener = OPENERS[mood][rng.integers(len(OPENERS[mood]))]
    if mood == "pos":
        body = f"{liked[rng.integers(len(liked))].capitalize()}."
    elif mood == "neg":
        body = f"{disliked[rng.integers(len(disliked))].capitalize()}."
    else:
        body = (
            f"{liked[rng.integers(len(liked))].capitalize()}, but "
            f"{disliked[rng.integers(len(disliked))]}."
        )
    closer = CLOSERS[mood][rng.integers(len(CLOSERS[mood]))]
    return " ".join(p for p in (opener, body, closer) if p)


def item_text(title: str, genre: str, description: str) -> str:
    """The item text: what the ``csv`` loader builds from ``books.csv`` by default."""
    return v.join_text([title, genre, description])


class SyntheticBooks(Dataset):
    """SYNTHETIC book reviews (seeded, deterministic): the built-in demo sample, not real data."""

    name = "synthetic-books"
    aliases = ("sample",)

    def __init__(
        self,
        seed: int = 7,
        n_users: int = 300,
        n_books: int = 400,
        n_reviews: int = 3000,
    ):
        self.seed = seed
        self.n_users = n_users
        self.n_books = n_books
        self.n_reviews = n_reviews

    def validate(self) -> None:
        check_ranges(self, {"n_users": (1, 1_000_000), "n_books": (1, 1_000_000),
                            "n_reviews": (1, 10_000_000)}, kind="dataset")  # fmt: skip

    def load(self, path: str | Path | None = None) -> RecData:
        """Generate in memory; ``path`` is ignored (the sample has no file)."""
        import pandas as pd

        raw = self._generate()
        report: dict[str, Any] = {
            "format": self.name,
            "synthetic": True,
            "seed": self.seed,
            "rows_read": len(raw["reviews"]["user_id"]),
            "languages": {"en": 0, "zh": 0},
        }
        rev = raw["reviews"]
        report["languages"]["zh"] = sum(1 for t in rev["review"] if not t.isascii())
        report["languages"]["en"] = len(rev["review"]) - report["languages"]["zh"]
        df = pd.DataFrame(
            {
                "user": rev["user_id"],
                "item": rev["book_id"],
                "rating": pd.Series(rev["rating"], dtype="float64"),
                "timestamp": pd.Series(rev["timestamp"], dtype="int64"),
                "text": rev["review"],
            }
        )
        df = v.dedupe_latest(df, report)
        books = raw["books"]
        items = pd.DataFrame(
            {
                "item": books["book_id"],
                "text": [
                    item_text(*t)
                    for t in zip(books["title"], books["genre"], books["description"], strict=True)
                ],
                "genre": books["genre"],
            }
        )
        return v.build_recdata(
            f"{NAME}, seed {self.seed}",
            df,
            report=report,
            rating_scale=(1.0, 5.0),
            has_text=True,
            items=items,
        )

    def _generate(self) -> dict[str, Any]:
        return generate(self.seed, self.n_users, self.n_books, self.n_reviews)

    def write(self, out_dir: str | Path) -> Path:
        """Write ``book_reviews.csv`` and ``books.csv`` (+ README.txt) atomically; return the
        path of ``book_reviews.csv``, loadable with ``--format csv`` (``items_path=books.csv``)."""
        import pandas as pd

        out = Path(out_dir)
        raw = self._generate()
        reviews_path = out / "book_reviews.csv"
        books_path = out / "books.csv"
        # books first: book_reviews.csv appearing means the sample is complete
        with atomic_open(books_path, "w") as fh:
            pd.DataFrame(raw["books"]).to_csv(fh, index=False, lineterminator="\n")
        with atomic_open(out / "README.txt", "w") as fh:
            fh.write(
                "SYNTHETIC DATA - generated by recfeat (plugins/datasets/synthetic.py), "
                f"seed {self.seed}.\nNot real reviews, users or books. book_reviews.csv: "
                "user_id, book_id, rating (1-5), timestamp (unix s), review.\nbooks.csv: book_id, "
                "title, genre, description.\nLoad: recfeat data info book_reviews.csv "
                "--option items_path=books.csv\n"
            )
        with atomic_open(reviews_path, "w") as fh:
            pd.DataFrame(raw["reviews"]).to_csv(fh, index=False, lineterminator="\n")
        for p in (books_path, out / "README.txt", reviews_path):
            _readable(p)
        return reviews_path


def _readable(path: Path) -> None:
    """Give the file the permissions a plain ``open`` would (temp files are created 0600)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_sample(out_dir: str | Path, seed: int = 7) -> Path:
    """Write the SYNTHETIC sample into ``out_dir``; return the ``book_reviews.csv`` path."""
    return SyntheticBooks(seed=seed).write(out_dir)
