"""The case study's data and every download: plumbing that the lessons call, one concern per module.

- `download`: one download into a cache, with progress bar, checksum and atomic write.
- `assets`: the table of every file the course downloads (checksum, licence, size); paintings for 05.
- `prefetch`: `make assets` (`python -m helpers.data.prefetch`), fetching the table's rows ahead of class.
- `files`: reading the data sets' files: RGB images as tensors, text lines, seeded subsets.
- `oxford_pets`: Oxford-IIIT Pet read from its official layout (cat/dog labels, trimaps).
- `celeba`: CelebA read from its official layout (attributes, landmarks, partition).
- `faceparts`: where the parts of a face are: landmarks, the parts an attribute is about, masks around them.
- `lookalike`: drawn look-alike Pets and CelebA in the official layouts (`offline`, `smoke`), with twins.
- `lookalike_draw`: the look-alikes' shared plumbing: folders written in one step, backgrounds, twins.
- `lookalike_pets`: look-alike pets whose label only their ears' shape carries, at random places.
- `lookalike_faces`: look-alike faces with planted answers, their twins, concept sets for TCAV.
- `datasets`: putting the case study's data on disk: download (`full`) or look-alikes (`offline`, `smoke`).
"""
