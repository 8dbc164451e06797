"""The reach proof: who can reach each service's data, proven from the account's documents.

`read` fetches the documents (one paginated IAM call, one bucket policy per bucket), `proof`
judges them against the graph the design expects, and `steps` turns the findings into the
check's report. The pure parts (`catalogue`, `documents`, `evaluate`, `graph`, `guarantees`)
import no AWS SDK, so the policy pack shares them.
"""
