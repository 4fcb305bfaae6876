# nbgrader's settings for the course (read when nbgrader runs in this folder). Every notebook is one
# assignment, linked from notebooks/ into grading/source/ by `make nbgrader`. A teacher then runs:
#   nbgrader generate_assignment 01_saliency_maps     # the student version in grading/release/
#   nbgrader autograde 01_saliency_maps               # grades grading/submitted/<student>/01_saliency_maps/
#   nbgrader generate_feedback 01_saliency_maps       # HTML feedback per student
import os

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

c = get_config()  # noqa: F821 (defined by the config loader)
c.CourseDirectory.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grading")
# Seconds per cell: the slowest cells (06's fine-tuning and LIME/SHAP in `full` on a CPU) take several minutes.
c.ExecutePreprocessor.timeout = 1800
c.Execute.timeout = 1800


class DropWrongAnswers(Preprocessor):
    """The solution cells' `wrong_answers` metadata (the course's own tests of the checks) holds pieces of the
    solutions: it stays out of the students' version."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        cell.metadata.pop("wrong_answers", None)
        return cell, resources


from nbgrader.converters import GenerateAssignment  # noqa: E402

c.GenerateAssignment.preprocessors = [*GenerateAssignment.class_traits()["preprocessors"].default(), DropWrongAnswers]
