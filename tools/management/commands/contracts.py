"""``manage.py contracts``: the endpoint contract table (tools/contracts.py).

Without options, one line per GET endpoint (budgets, cache status, probes);
``--readme`` prints the README's "Query budgets" table, which a test keeps equal
to the table (paste it between the ``contracts:start`` / ``contracts:end`` marks)."""
from django.core.management.base import BaseCommand

from tools.contracts import ENDPOINTS, readme_table


def _budget(budget) -> str:
    return "refused" if budget is None else f"{budget.miss}/{budget.hit}"


class Command(BaseCommand):
    help = "Print the GET endpoints' contracts: query budgets, cache status, index probes."

    def add_arguments(self, parser):
        parser.add_argument("--readme", action="store_true", help="print the README budget table")

    def handle(self, *args, **options):
        if options["readme"]:
            self.stdout.write(readme_table())
            return
        for e in ENDPOINTS:
            self.stdout.write(
                f"GET {e.path:<28} {e.cache:<8} anonymous {_budget(e.anonymous):<8} "
                f"signed in {_budget(e.signed_in):<6} probes {len(e.probes)}"
            )
