//! The TPC-H queries of the job, as in the specification (revision 3), with its validation
//! parameters (clause 2.4.x.4 of each query).

/// A query: its name (also the output file's stem), the tables it reads, and its text.
pub struct Query {
    /// `q1`, `q3`..: also the stem of the result files.
    pub name: &'static str,
    /// The tables it reads, as named in its SQL.
    pub tables: &'static [&'static str],
    /// The query, with the specification's validation parameters.
    pub sql: &'static str,
}

/// Q1, pricing summary report: DELTA = 90.
pub const Q1: Query = Query {
    name: "q1",
    tables: &["lineitem"],
    sql: "select
    l_returnflag,
    l_linestatus,
    sum(l_quantity) as sum_qty,
    sum(l_extendedprice) as sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
    avg(l_quantity) as avg_qty,
    avg(l_extendedprice) as avg_price,
    avg(l_discount) as avg_disc,
    count(*) as count_order
from
    lineitem
where
    l_shipdate <= date '1998-12-01' - interval '90' day
group by
    l_returnflag,
    l_linestatus
order by
    l_returnflag,
    l_linestatus",
};

/// Q3, shipping priority: SEGMENT = BUILDING, DATE = 1995-03-15.
pub const Q3: Query = Query {
    name: "q3",
    tables: &["customer", "orders", "lineitem"],
    sql: "select
    l_orderkey,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    o_orderdate,
    o_shippriority
from
    customer,
    orders,
    lineitem
where
    c_mktsegment = 'BUILDING'
    and c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate < date '1995-03-15'
    and l_shipdate > date '1995-03-15'
group by
    l_orderkey,
    o_orderdate,
    o_shippriority
order by
    revenue desc,
    o_orderdate
limit 10",
};

/// Q5, local supplier volume: REGION = ASIA, DATE = 1994-01-01.
pub const Q5: Query = Query {
    name: "q5",
    tables: &["customer", "orders", "lineitem", "supplier", "nation", "region"],
    sql: "select
    n_name,
    sum(l_extendedprice * (1 - l_discount)) as revenue
from
    customer,
    orders,
    lineitem,
    supplier,
    nation,
    region
where
    c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and l_suppkey = s_suppkey
    and c_nationkey = s_nationkey
    and s_nationkey = n_nationkey
    and n_regionkey = r_regionkey
    and r_name = 'ASIA'
    and o_orderdate >= date '1994-01-01'
    and o_orderdate < date '1994-01-01' + interval '1' year
group by
    n_name
order by
    revenue desc",
};

/// Q6, forecasting revenue change: DATE = 1994-01-01, DISCOUNT = 0.06, QUANTITY = 24.
pub const Q6: Query = Query {
    name: "q6",
    tables: &["lineitem"],
    sql: "select
    sum(l_extendedprice * l_discount) as revenue
from
    lineitem
where
    l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.06 - 0.01 and 0.06 + 0.01
    and l_quantity < 24",
};

/// Q10, returned item reporting: DATE = 1993-10-01.
pub const Q10: Query = Query {
    name: "q10",
    tables: &["customer", "orders", "lineitem", "nation"],
    sql: "select
    c_custkey,
    c_name,
    sum(l_extendedprice * (1 - l_discount)) as revenue,
    c_acctbal,
    n_name,
    c_address,
    c_phone,
    c_comment
from
    customer,
    orders,
    lineitem,
    nation
where
    c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate >= date '1993-10-01'
    and o_orderdate < date '1993-10-01' + interval '3' month
    and l_returnflag = 'R'
    and c_nationkey = n_nationkey
group by
    c_custkey,
    c_name,
    c_acctbal,
    c_phone,
    n_name,
    c_address,
    c_comment
order by
    revenue desc
limit 20",
};

/// Q12, shipping modes and order priority: SHIPMODE1 = MAIL, SHIPMODE2 = SHIP,
/// DATE = 1994-01-01.
pub const Q12: Query = Query {
    name: "q12",
    tables: &["orders", "lineitem"],
    sql: "select
    l_shipmode,
    sum(case
        when o_orderpriority = '1-URGENT'
            or o_orderpriority = '2-HIGH'
            then 1
        else 0
    end) as high_line_count,
    sum(case
        when o_orderpriority <> '1-URGENT'
            and o_orderpriority <> '2-HIGH'
            then 1
        else 0
    end) as low_line_count
from
    orders,
    lineitem
where
    o_orderkey = l_orderkey
    and l_shipmode in ('MAIL', 'SHIP')
    and l_commitdate < l_receiptdate
    and l_shipdate < l_commitdate
    and l_receiptdate >= date '1994-01-01'
    and l_receiptdate < date '1994-01-01' + interval '1' year
group by
    l_shipmode
order by
    l_shipmode",
};

/// Every query of the job, in order.
pub const ALL: [&Query; 6] = [&Q1, &Q3, &Q5, &Q6, &Q10, &Q12];
