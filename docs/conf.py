"""Sphinx configuration of the API reference: autodoc reads the installed package's docstrings.

They are written in NumPy's style with one house habit: a parameter is ``name : what it is`` on
one line (its kind said in words), where NumPy puts ``name : type`` and the words below. The hook
below turns that line into NumPy's form before napoleon reads it, and closes a parameter list at
the first paragraph that is not a parameter (NumPy would need a "Notes" heading there).
"""
import re

import cascade

project = "cascade"
release = version = cascade.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
exclude_patterns = ["notes", "_build", "requirements.txt"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
napoleon_google_docstring = False
html_theme = "alabaster"

_LISTS = ("Parameters", "Attributes", "Other Parameters")
_ITEM = re.compile(r"^(\*{0,2}[A-Za-z_][\w, *]*?) : (.+)$")


def _numpy_parameters(app, what, name, obj, options, lines):
    """House-style parameter lists (see above) in NumPy's form, in place."""
    out, listing = [], False
    for index, line in enumerate(lines):
        underline = index + 1 < len(lines) and set(lines[index + 1].strip()) == {"-"}
        if underline:
            listing = line.strip() in _LISTS
        elif listing and line and not line[0].isspace():
            item = _ITEM.match(line)
            if item:
                out += [item.group(1), "    " + item.group(2)]
                continue
            if not out or out[-1] == "":          # a paragraph after the list: it ends the list
                out += ["Notes", "-----"]
                listing = False
        out.append(line)
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _numpy_parameters, priority=400)     # before napoleon's
