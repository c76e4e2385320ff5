"""Redirects after a form was posted."""

from django.http import HttpResponseRedirect


class SeeOther(HttpResponseRedirect):
    """303: the browser follows with a GET, so reloading the page it lands on never posts the
    form again (a second order, a second refund)."""

    status_code = 303
