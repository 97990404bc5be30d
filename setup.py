"""Package definition for the crypto market-data lakehouse (Dagster code location + producer)."""
from setuptools import find_packages, setup

DAGSTER_VERSION = "1.13.27"
DAGSTER_LIBS_VERSION = "0.29.27"  # dagster 1.X.Y pairs with libraries 0.(X+16).Y

setup(
    name="crypto-lakehouse",
    version="0.1.0",
    description="Coinbase market data -> Kafka -> Bronze/Silver/Gold lakehouse, orchestrated by Dagster",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["crypto_assets", "crypto_assets.*", "producer", "producer.*"]),
    package_data={"producer": ["samples/*.ndjson", "samples/*.md"]},
    install_requires=[
        f"dagster=={DAGSTER_VERSION}",
        f"dagster-webserver=={DAGSTER_VERSION}",
        f"dagster-aws=={DAGSTER_LIBS_VERSION}",
        f"dagster-pyspark=={DAGSTER_LIBS_VERSION}",
        # Glue 5.1 runs Spark 3.5.x; the local engine must be the same line.
        "pyspark[connect]==3.5.7",  # must equal the spark-sql-kafka connector version Maven Central serves
        "pandas>=2.0,<2.3",
        "numpy>=1.26,<2.0",
        "pyarrow>=15,<20",
        "kafka-python>=3.0,<4",  # 3.x API (bootstrap_timeout_ms, no NoBrokersAvailable)
        # kafka-python checksums every record batch with CRC32C; without this C implementation it
        # does so in pure Python, which caps a producer near 5,000 records/s.
        "crc32c>=2.4,<3",
        "websocket-client>=1.8,<2",
        "cryptography>=42",  # ES256 JWTs for authenticated Coinbase subscriptions (optional credentials)
        "boto3>=1.34,<2",
        # Every setting is declared once (crypto_assets/contracts/settings.py); NoDecode needs 2.7.
        "pydantic>=2.7,<3",
        "pydantic-settings>=2.7,<3",
        # The lake's tables: Iceberg v2 through pyiceberg (SQLite catalog locally, Glue catalog in AWS);
        # 0.12 retries commits that lose a race (0.11 does not).
        "pyiceberg[sql-sqlite,glue]>=0.12,<0.13",
        # `crypto-pipeline sql`: DuckDB embedded, reading the tables' snapshot files as Arrow datasets.
        "duckdb>=2.0,<3",
        # `crypto-pipeline dashboard`: Streamlit (st.fragment(run_every) needs 1.37) and its bundled Altair
        # (Vega-Lite rendered by Streamlit's own front end: no CDN, works offline).
        "streamlit>=1.45,<2",
        "altair>=5,<7",
        # The Gold baseline (crypto_assets/ml): gradient boosting with gain importances (LightGBM, 10 MB beside scipy).
        "lightgbm>=4.5,<5",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "ruff>=0.6",
            "syrupy>=4.8,<8",  # the generated snapshot of every asset spec (crypto_assets_tests/orchestration)
            "moto[server]>=5.0,<6",
            # Browser test of the Dagster UI; drives Debian's /usr/bin/chromium (`make browser`),
            # never a downloaded browser.
            "playwright>=1.50,<2",
        ],
    },
    entry_points={
        "console_scripts": [
            "crypto-pipeline=crypto_assets.tools.cli:main",
        ],
    },
)
