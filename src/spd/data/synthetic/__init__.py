"""The synthetic human dataset: procedurally generated people with exact parsing, keypoint and
DensePose targets, written in the real LIP / ATR / IUV formats."""

from .domains import DOMAINS, Domain, get_domain
from .render import SyntheticPerson, render_person
from .writer import MANIFEST, PEOPLE, PersonRecord, SynthSpec, generate, read_people

__all__ = ["DOMAINS", "Domain", "MANIFEST", "PEOPLE", "PersonRecord", "SynthSpec", "SyntheticPerson",
           "generate", "get_domain", "read_people", "render_person"]
