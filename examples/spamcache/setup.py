from setuptools import Extension, setup

setup(
    packages=["spamcache"],
    ext_modules=[
        Extension(
            "spamcache._spam",
            sources=["src/spam.c", "src/lru.c"],
            include_dirs=["include"],
        )
    ],
)
