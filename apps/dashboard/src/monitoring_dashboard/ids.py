"""Component ids shared by layouts and callbacks."""

# App shell (present on every page).
REFRESH = "refresh-interval"
STATUS_STORE = "status-store"
# The Live and Functions pages' time-range choice: one id, so the choice made on one page (kept in
# the tab's session storage) is the other's too. One page is shown at a time.
TIME_RANGE = "time-range"
HISTORY_STORE = "browser-history-store"

# Live page.
LIVE_VERSION = "live-rendered-version"
NOTICES = "live-notices"
FRESHNESS = "live-freshness"
KPI_EGRESS = "kpi-egress"
KPI_CACHING = "kpi-caching"
KPI_CPU = "kpi-cpu"
KPI_INPUT = "kpi-input"
KPIS = (KPI_EGRESS, KPI_CACHING, KPI_CPU, KPI_INPUT)
GRAPH_EGRESS = "graph-egress"
GRAPH_CACHING = "graph-caching"
GRAPH_CPU_LINES = "graph-cpu-lines"
GRAPH_CPU_HEATMAP = "graph-cpu-heatmap"
GRAPH_LATEST = "graph-latest"

# Functions page.
FUNCTIONS_REFRESH = "functions-refresh-interval"
FUNCTIONS_SELECTED = "functions-selected"
FUNCTIONS_VERSION = "functions-rendered-version"
FUNCTIONS_NOTICES = "functions-notices"
FUNCTIONS_LIST = "functions-list"
FUNCTION_HEAD = "function-head"
FUNCTION_BODY = "function-body"
# The list's filter (output-key substring), the page shown, and its pager (a pattern id's type:
# the pager is drawn with the list, so it exists only while the list has more than one page).
FUNCTIONS_FILTER = "functions-filter"
FUNCTIONS_PAGE = "functions-page"
FUNCTIONS_PAGER = "functions-pager"
